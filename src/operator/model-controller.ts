// The AcceleratedModel controller: validates the spec against the operator's GPU classes,
// resolves and checks the artifact where the operator can read it, computes memory per class,
// and reports pools, queue depth and readiness. It writes status only when something changed.
import {
  type AcceleratedModelStatus,
  ModelConditionType,
  ModelReason,
  type PoolStatus,
} from "../api/index.ts";
import type { ReconcileResult } from "../kube/index.ts";
import { queueDepth, workers as workersGauge } from "../telemetry/index.ts";
import { type Artifact, ArtifactError, localModelDir, requiredGiB, resolveArtifact } from "./artifact.ts";
import { findCondition, sameJson, setCondition } from "./conditions.ts";
import { type Context, jobsOfModel, podReady, workersOfModel } from "./context.ts";
import type { Dispatcher } from "./dispatcher.ts";
import { GPU_CLASS_LABEL, type ModelObject } from "./kinds.ts";
import { selectorString, workerSelector } from "./podtemplate.ts";
import { activeAssignment, allowedClasses } from "./queue.ts";

export interface Validation {
  ok: boolean;
  reason: string;
  message: string;
  artifact?: Artifact;
  memory?: AcceleratedModelStatus["memory"];
}

/** Model status is rewritten at most this often (default 1 s): queue depth moves with every job. */
const STATUS_INTERVAL_MS = 1_000;

export class ModelController {
  private readonly writtenAt = new Map<string, number>();

  constructor(
    private readonly ctx: Context,
    private readonly dispatcher: Dispatcher,
    /** Classes currently skipped for lack of capacity, per model key (owned by the pool controller). */
    private readonly noCapacity: (modelKey: string) => ReadonlySet<string>,
  ) {}

  /** Validation shared with the pool controller: only a validated model gets workers. */
  async validate(model: ModelObject): Promise<Validation> {
    const known = this.ctx.config.gpuClasses;
    const unknown = model.spec.gpuClasses.filter((c) => !known[c]);
    if (unknown.length > 0) {
      return {
        ok: false,
        reason: ModelReason.UnknownGpuClass,
        message: `spec.gpuClasses: ${unknown.join(", ")} not configured (the operator knows ${Object.keys(known).join(", ")})`,
      };
    }
    const dir = localModelDir(model.spec.source);
    if (!dir)
      return { ok: true, reason: ModelReason.Valid, message: "spec is valid; workers resolve the artifact" };
    let artifact: Artifact;
    try {
      artifact = await resolveArtifact(dir);
    } catch (err) {
      const reason = err instanceof ArtifactError ? err.reason : ModelReason.ArtifactUnavailable;
      return { ok: false, reason, message: (err as Error).message };
    }
    const video = artifact.info.config.video;
    const need = requiredGiB(artifact, video);
    const memory = model.spec.gpuClasses.map((c) => ({
      gpuClass: c,
      requiredGiB: need,
      availableGiB: known[c]?.memoryGiB ?? 0,
      fits: need <= (known[c]?.memoryGiB ?? 0),
    }));
    if (!memory.some((m) => m.fits)) {
      return {
        ok: false,
        reason: ModelReason.DoesNotFit,
        message: `needs ${need} GiB per worker; the largest class offers ${Math.max(...memory.map((m) => m.availableGiB))} GiB`,
        artifact,
        memory,
      };
    }
    return {
      ok: true,
      reason: ModelReason.Valid,
      message: `artifact ${artifact.sha256.slice(0, 12)} checked`,
      artifact,
      memory,
    };
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const model = this.ctx.models.get(key);
    if (!model) {
      this.writtenAt.delete(key);
      return undefined;
    }
    const ns = model.metadata.namespace as string;
    const name = model.metadata.name as string;
    const generation = model.metadata.generation ?? 0;
    const v = await this.validate(model);
    let conditions = setCondition(
      model.status?.conditions,
      {
        type: ModelConditionType.Validated,
        status: v.ok ? "True" : "False",
        reason: v.reason,
        message: v.message,
      },
      generation,
    );

    const busy = this.dispatcher.busyWorkers();
    const pods = workersOfModel(this.ctx, ns, name).filter((p) => !p.metadata.deletionTimestamp);
    const jobs = jobsOfModel(this.ctx, ns, name);
    const active = jobs.filter((j) => j.status?.phase === "Queued" || activeAssignment(j));
    const skip = this.noCapacity(key);
    const pools: PoolStatus[] = [];
    const classes = [
      ...new Set([...model.spec.gpuClasses, ...pods.map((p) => p.metadata.labels?.[GPU_CLASS_LABEL] ?? "")]),
    ];
    for (const cls of classes.filter(Boolean)) {
      const inClass = pods.filter((p) => p.metadata.labels?.[GPU_CLASS_LABEL] === cls);
      const ready = inClass.filter(podReady);
      const nBusy = inClass.filter((p) => busy.has(`${ns}/${p.metadata.name}`)).length;
      pools.push({ gpuClass: cls, desired: inClass.length, ready: ready.length, busy: nBusy });
      workersGauge.set(
        { namespace: ns, model: name, gpu_class: cls, state: "pending" },
        inClass.length - ready.length,
      );
      workersGauge.set({ namespace: ns, model: name, gpu_class: cls, state: "ready" }, ready.length - nBusy);
      workersGauge.set({ namespace: ns, model: name, gpu_class: cls, state: "busy" }, nBusy);
      const depth = active.filter((j) => {
        const a = activeAssignment(j);
        return a
          ? a.gpuClass === cls
          : allowedClasses(j, model.spec.gpuClasses).find((c) => !skip.has(c)) === cls;
      }).length;
      queueDepth.set({ namespace: ns, model: name, gpu_class: cls }, depth);
    }
    const readyWorkers = pools.reduce((s, p) => s + p.ready, 0);
    const crashing = pods.filter((p) =>
      (p.status?.containerStatuses ?? []).some(
        (c) => (c.restartCount ?? 0) > 2 || c.state?.waiting?.reason === "CrashLoopBackOff",
      ),
    );
    let phase: AcceleratedModelStatus["phase"];
    let ready: { status: "True" | "False"; reason: string; message: string };
    if (!v.ok) {
      phase = "Failed";
      ready = { status: "False", reason: v.reason, message: v.message };
    } else if (skip.size > 0 && readyWorkers === 0) {
      phase = "Degraded";
      ready = {
        status: "False",
        reason: ModelReason.NoCapacity,
        message: `no capacity in ${[...skip].join(", ")}; pools fall back to the next class`,
      };
    } else if (crashing.length > 0) {
      phase = "Degraded";
      const c = crashing[0]?.status?.containerStatuses?.[0];
      const why = c?.lastState?.terminated?.message ?? c?.state?.waiting?.message ?? "restarting";
      ready = {
        status: readyWorkers > 0 ? "True" : "False",
        reason: ModelReason.NoWorkers,
        message: `${crashing.length} worker(s) crash-looping: ${why}`,
      };
    } else if (readyWorkers > 0) {
      phase = "Ready";
      ready = {
        status: "True",
        reason: ModelReason.WorkersReady,
        message: `${readyWorkers} worker(s) ready`,
      };
    } else if (pods.length === 0) {
      phase = "Ready";
      ready = {
        status: "True",
        reason: ModelReason.ScaledToZero,
        message: "no workers; the autoscaler starts them when jobs arrive",
      };
    } else {
      phase = "Loading";
      ready = {
        status: "False",
        reason: ModelReason.NoWorkers,
        message: `${pods.length} worker(s) starting`,
      };
    }
    conditions = setCondition(conditions, { type: ModelConditionType.Ready, ...ready }, generation);
    const status: AcceleratedModelStatus = {
      ...(model.status ?? {}),
      phase,
      observedGeneration: generation,
      conditions,
      artifact: v.artifact
        ? { sha256: v.artifact.sha256, bytes: v.artifact.bytes, parameters: v.artifact.parameters }
        : model.status?.artifact,
      memory: v.memory ?? model.status?.memory,
      pools,
      readyWorkers,
      replicas: pods.length,
      selector: selectorString(workerSelector(name)),
      queueDepth: active.length,
    };
    if (sameJson(status, model.status)) return undefined;
    const since = Date.now() - (this.writtenAt.get(key) ?? 0);
    if (since < STATUS_INTERVAL_MS) return { requeueAfterMs: STATUS_INTERVAL_MS - since };
    this.writtenAt.set(key, Date.now());
    const before = findCondition(model.status?.conditions, ModelConditionType.Validated);
    await this.ctx.kinds.models.mergePatch(
      ns,
      name,
      { metadata: { resourceVersion: model.metadata.resourceVersion }, status },
      { subresource: "status", fieldManager: this.ctx.fieldManager },
    );
    if (before?.status !== (v.ok ? "True" : "False") || before?.reason !== v.reason) {
      this.ctx.recorder.record(model, v.ok ? "Normal" : "Warning", v.reason, v.message);
    }
    return undefined;
  }
}
