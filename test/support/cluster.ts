// Test access to the local control plane that scripts/run-tests.mjs starts once per test run
// (its admin kubeconfig arrives in FRAMEFLEET_KUBECONFIG). Each test file calls
// `await useTestCluster(import.meta.url)` and gets its own namespace, deleted by `cleanup()`.
//
//   const cluster = await useTestCluster(import.meta.url);
//   after(() => cluster.cleanup());
//   await cluster.kubectl(["apply", "-f", "manifests/examples/job-baseline.yaml"]);
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { KubeConfig } from "@kubernetes/client-node";
import { clusterBinary, repoRoot } from "../cluster/control-plane.ts";
import { isNotFound, KubeClient } from "../cluster/kube-client.ts";

export { isNotFound, KubeClient, KubeError } from "../cluster/kube-client.ts";
export { clusterBinary, repoRoot };

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface TestCluster {
  /** Admin kubeconfig path (system:masters). */
  kubeconfig: string;
  /** State folder of the cluster: pods/<ns>_<pod>_<uid>/logs/<container>.log, pvcs/<ns>/<claim>. */
  dir: string;
  /** This test file's namespace. */
  namespace: string;
  /** Raw REST client with admin rights. */
  client: KubeClient;
  /** @kubernetes/client-node config for the same admin identity. */
  kubeConfig(): KubeConfig;
  /** Runs kubectl with the admin kubeconfig in this namespace (unless args name one). */
  kubectl(args: string[], options?: { input?: string; timeoutMs?: number }): Promise<CommandResult>;
  /** The log file of a pod's container (the process kubelet keeps one per container). */
  podLog(pod: string, container: string): string;
  /** Deletes the namespace (and so every pod process in it). */
  cleanup(): Promise<void>;
}

export function run(
  command: string,
  args: string[],
  options: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: repoRoot,
      env: options.env ?? process.env,
      timeout: options.timeoutMs ?? 60_000,
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.end(options.input ?? "");
  });
}

/** Polls `probe` until it returns something other than undefined, or fails with what it waited for. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 30_000,
  intervalMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${lastError}` : ""}`);
}

export function clusterKubeconfig(): string {
  const kubeconfig = process.env.FRAMEFLEET_KUBECONFIG;
  if (!kubeconfig || !existsSync(kubeconfig)) {
    throw new Error(
      "FRAMEFLEET_KUBECONFIG is not set: run cluster tests through `node scripts/run-tests.mjs` (it starts the " +
        "local control plane), or start one with `npm run cluster -- up` and export FRAMEFLEET_KUBECONFIG=.framefleet/kubeconfig",
    );
  }
  return kubeconfig;
}

/** Creates this test file's namespace (named after the file) on the shared test cluster. */
export async function useTestCluster(fileUrl: string): Promise<TestCluster> {
  const kubeconfig = clusterKubeconfig();
  const dir = process.env.FRAMEFLEET_CLUSTER_DIR ?? dirname(kubeconfig);
  const stem = basename(fileURLToPath(fileUrl))
    .replace(/\.test\.ts$/, "")
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-");
  const namespace = `t-${stem.slice(0, 40)}-${randomBytes(3).toString("hex")}`;
  const client = KubeClient.fromKubeconfig(kubeconfig);
  await client.create("/api/v1/namespaces", {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: { name: namespace, labels: { "framefleet.dev/test-file": stem.slice(0, 63) } },
  });
  // Pods are admitted only once the namespace's default ServiceAccount exists.
  await waitFor(`ServiceAccount ${namespace}/default`, () =>
    client.get(`/api/v1/namespaces/${namespace}/serviceaccounts/default`).then(() => true),
  );
  return {
    kubeconfig,
    dir,
    namespace,
    client,
    kubeConfig() {
      const kc = new KubeConfig();
      kc.loadFromFile(kubeconfig);
      return kc;
    },
    kubectl(args, options) {
      const ns = args.some((a) => a === "-n" || a.startsWith("--namespace") || a === "-A")
        ? []
        : ["-n", namespace];
      return run(clusterBinary, ["kubectl", `--kubeconfig=${kubeconfig}`, ...ns, ...args], options);
    },
    podLog(pod, container) {
      const podsDir = join(dir, "pods");
      const folder = readdirSync(podsDir).find((f) => f.startsWith(`${namespace}_${pod}_`));
      if (!folder) throw new Error(`no local folder for pod ${namespace}/${pod} under ${podsDir}`);
      return join(podsDir, folder, "logs", `${container}.log`);
    },
    async cleanup() {
      try {
        await client.delete(`/api/v1/namespaces/${namespace}`);
      } catch (err) {
        if (!isNotFound(err)) throw err;
      } finally {
        client.close();
      }
    },
  };
}

/** Reads a container log written by the process kubelet ("" while it does not exist). */
export function readLog(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}
