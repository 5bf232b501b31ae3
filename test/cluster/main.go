// Command framefleet-cluster is one multi-call binary holding a whole Kubernetes control plane
// for tests: embedded etcd, kube-apiserver, kube-scheduler, kube-controller-manager, kubectl and
// helm, plus a small PKI generator. Each component runs as its own process of this binary
// (framefleet-cluster <component> [flags]) because their signal handling may only be set up once
// per process.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	_ "time/tzdata" // CronJob time zones

	helmcmd "helm.sh/helm/v4/pkg/cmd"
	helmkube "helm.sh/helm/v4/pkg/kube"
	_ "k8s.io/client-go/plugin/pkg/client/auth"
	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
)

const usage = `usage: framefleet-cluster <command> [flags]

commands:
  etcd                embedded etcd (flags: --data-dir, --listen-client, --listen-peer)
  apiserver           kube-apiserver
  scheduler           kube-scheduler
  controller-manager  kube-controller-manager
  kubectl             kubectl
  helm                helm v4
  pki                 write CA, serving, client certificates and the service-account key (--dir)
  version             print the Kubernetes version this binary was built from
`

func main() {
	// Multi-call: "kubectl get pods" through a symlink named kubectl works like
	// "framefleet-cluster kubectl get pods".
	name := filepath.Base(os.Args[0])
	if name == "framefleet-cluster" || strings.HasPrefix(name, "framefleet-cluster") {
		if len(os.Args) < 2 {
			fmt.Fprint(os.Stderr, usage)
			os.Exit(2)
		}
		os.Args = os.Args[1:]
		name = os.Args[0]
	}
	os.Exit(run(name))
}

func run(name string) int {
	switch name {
	case "etcd":
		return runEtcd(os.Args[1:])
	case "apiserver", "kube-apiserver":
		return cli.Run(apiserver.NewAPIServerCommand())
	case "scheduler", "kube-scheduler":
		return cli.Run(scheduler.NewSchedulerCommand())
	case "controller-manager", "kube-controller-manager":
		return cli.Run(controllermanager.NewControllerManagerCommand())
	case "kubectl":
		logs.GlogSetter(kubectlcmd.GetLogVerbosity(os.Args)) //nolint:errcheck
		command := kubectlcmd.NewDefaultKubectlCommand()
		if err := cli.RunNoErrOutput(command); err != nil {
			kubectlutil.CheckErr(err)
		}
		return 0
	case "helm":
		return runHelm()
	case "pki":
		return runPKI(os.Args[1:])
	case "version":
		fmt.Println(kubernetesVersion())
		return 0
	case "-h", "--help", "help":
		fmt.Print(usage)
		return 0
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n%s", name, usage)
		return 2
	}
}

func runHelm() int {
	helmkube.ManagedFieldsManager = "helm"
	command, err := helmcmd.NewRootCmd(os.Stdout, os.Args[1:], helmcmd.SetupLogging)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helm:", err)
		return 1
	}
	if err := command.Execute(); err != nil {
		if cerr, ok := errors.AsType[helmcmd.CommandError](err); ok {
			return cerr.ExitCode
		}
		return 1
	}
	return 0
}
