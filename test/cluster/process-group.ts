// Process-group signalling shared by the control plane (components) and the kubelet (pods):
// every component and every container is the leader of its own group.

/** Signals the whole group led by pid, or pid alone if it leads none. */
export function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {}
  }
}
