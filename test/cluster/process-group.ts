// Process-group signalling shared by the control plane (components) and the kubelet (pods):
// every component and every container is the leader of its own group.
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";

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

/**
 * Process-group leaders of pod containers recorded in `pidsDir` (one file per pid, written by
 * the kubelet) that are still alive. A pid counts only while its environment still names a pod
 * folder, so a recycled pid is never signalled.
 */
export function recordedPodProcesses(pidsDir: string): number[] {
  if (!existsSync(pidsDir)) return [];
  const pids: number[] = [];
  for (const name of readdirSync(pidsDir)) {
    const pid = Number(name);
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const environ = readFileSync(`/proc/${pid}/environ`, "utf8");
      if (!/\) [ZX] /.test(stat) && environ.includes("FRAMEFLEET_POD_DIR=")) pids.push(pid);
      else rmSync(join(pidsDir, name), { force: true });
    } catch {
      rmSync(join(pidsDir, name), { force: true });
    }
  }
  return pids;
}
