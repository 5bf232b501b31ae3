package main

import "runtime/debug"

// kubernetesVersion reports the k8s.io/kubernetes module version linked into this binary.
func kubernetesVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	for _, dep := range info.Deps {
		if dep.Path == "k8s.io/kubernetes" {
			return "kubernetes " + dep.Version
		}
	}
	return "unknown"
}
