// Restarting the API server mid-run: informers reconnect (relisting when their resourceVersion
// is too old), the leader keeps or regains its Lease, workers keep renewing, and every job
// still completes exactly once.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { ClusterState } from "../cluster/control-plane.ts";
import {
  apply,
  clusterNamespace,
  e2eModelSource,
  installOperator,
  type TestEnv,
  waitFor,
} from "./harness.ts";

/**
 * Kills the cluster's kube-apiserver (SIGKILL: a crash, and no graceful drain that would keep
 * watches open) and starts it again with the same arguments and log.
 */
async function restartApiServer(clusterDir: string, downMs: number): Promise<void> {
  const statePath = join(clusterDir, "state.json");
  const state = JSON.parse(readFileSync(statePath, "utf8")) as ClusterState;
  const pid = state.pids.apiserver as number;
  const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
  process.kill(pid, "SIGKILL");
  await waitFor(
    "the API server to exit",
    () => {
      try {
        return /\) [ZX] /.test(readFileSync(`/proc/${pid}/stat`, "utf8")) ? true : undefined;
      } catch {
        return true;
      }
    },
    30_000,
    100,
  );
  await new Promise((r) => setTimeout(r, downMs));
  const log = openSync(join(clusterDir, "logs", "apiserver.log"), "a");
  const child = spawn(argv[0] as string, argv.slice(1), {
    cwd: clusterDir,
    detached: true,
    stdio: ["ignore", log, log],
  });
  child.unref();
  // The run's teardown stops components by the pids in its state file.
  state.pids.apiserver = child.pid;
  writeFileSync(statePath, `${JSON.stringify(state, null, 2)}\n`);
}

describe("operator across an API server restart", { timeout: 300_000 }, () => {
  let env: TestEnv;
  let cleanup: () => Promise<void>;
  let work: string;

  before(async () => {
    ({ env, cleanup } = await clusterNamespace(import.meta.url));
    work = mkdtempSync(join(tmpdir(), "framefleet-e2e-"));
    // A slow synthetic model, so the restart lands while jobs are generating.
    const { source } = e2eModelSource(work, "synthetic");
    installOperator(env, { replicas: 1 });
    apply(env, [
      {
        apiVersion: "framefleet.dev/v1alpha1",
        kind: "AcceleratedModel",
        metadata: { name: "shapes", namespace: env.namespace },
        spec: {
          source,
          gpuClasses: ["cpu"],
          workers: {
            env: [
              { name: "FRAMEFLEET_WORKER_ENGINE", value: "synthetic" },
              { name: "FRAMEFLEET_SYNTHETIC_STEP_MS", value: "500" },
            ],
          },
          scaling: { minWorkers: 0, maxWorkers: 2, jobsPerWorker: 1, scaleDownDelaySeconds: 30 },
        },
      },
    ]);
  });

  after(async () => {
    await cleanup?.();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("completes every job when the API server restarts mid-run", async () => {
    const names = Array.from({ length: 6 }, (_, i) => `restart-${i}`);
    apply(
      env,
      names.map((name, i) => ({
        apiVersion: "framefleet.dev/v1alpha1",
        kind: "VideoGenerationJob",
        metadata: { name, namespace: env.namespace },
        spec: {
          model: "shapes",
          prompt: "a blue square moving up on a white background",
          seed: i,
          sampling: { steps: 4 },
          video: { width: 32, height: 32, frames: 9, fps: 8 },
          output: { format: "png-frames" },
        },
      })),
    );
    await waitFor(
      "a job to be generating",
      async () => {
        const list = (await env.kinds.jobs.list(env.namespace)).items;
        return (
          list.some((j) => j.status?.phase === "Running" && (j.status.progress?.percent ?? 0) > 0) ||
          undefined
        );
      },
      120_000,
    );
    const clusterDir = process.env.FRAMEFLEET_CLUSTER_DIR ?? join(env.kubeconfig, "..");
    await restartApiServer(clusterDir, 3_000);
    const list = await waitFor(
      "every job to succeed after the restart",
      async () => {
        const l = (await env.kinds.jobs.list(env.namespace)).items;
        const failed = l.find((j) => j.status?.phase === "Failed");
        if (failed) throw new Error(`${failed.metadata.name} failed: ${failed.status?.message}`);
        return l.length === names.length && l.every((j) => j.status?.phase === "Succeeded") ? l : undefined;
      },
      240_000,
      500,
    );
    for (const j of list) assert.ok(j.status?.output?.sha256, `${j.metadata.name} recorded its output`);
  });
});
