// The VideoGenerationJob controller: admission against the model (Accepted/Queued or a clear
// reason), queue positions, suspension, deletion through the finalizer, activeDeadlineSeconds,
// lost workers and expired leases (through the dispatcher, which owns assignments; a lease is
// timed by this process's clock from when it saw the renewal, see lease-clock.ts), and TTL.
import { JobConditionType, JobReason, type JobStatus, ModelConditionType } from "../api/index.ts";
import { isNotFound, type ReconcileResult, splitKey } from "../kube/index.ts";
import { resolveKnobs } from "../pipeline/knobs.ts";
import { checkPrompt, checkVideoSize } from "../pipeline/model-dir.ts";
import { jobsFinished } from "../telemetry/index.ts";
import { type Artifact, localModelDir, requiredGiB, resolveArtifact } from "./artifact.ts";
import { findCondition, sameJson, setCondition } from "./conditions.ts";
import { type Context, keyOf, podDead } from "./context.ts";
import type { Dispatcher } from "./dispatcher.ts";
import { setStatusOps } from "./fencing.ts";
import { JOB_FINALIZER, type JobObject, type ModelObject, WORKER_LABEL } from "./kinds.ts";
import { LeaseClock, leaseMsOf } from "./lease-clock.ts";
import { activeAssignment, allowedClasses, isFinished, queuePositions } from "./queue.ts";

/** Queue positions of waiting jobs are rewritten at most this often (default 10 s) to bound API writes. */
export const POSITION_REFRESH_MS = 10_000;
/** How long after an assignment a missing worker label counts as lost (default 5 s). */
const LABEL_GRACE_MS = 5_000;
/** Positions are kept current for this many jobs at the head of each model's queue (default 10). */
const POSITION_HEAD = 10;

export class JobController {
  private readonly positionWrittenAt = new Map<string, number>();
  private readonly leases = new LeaseClock();

  constructor(
    private readonly ctx: Context,
    private readonly dispatcher: Dispatcher,
  ) {}

  async reconcile(key: string): Promise<ReconcileResult> {
    const job = this.ctx.jobs.get(key);
    if (!job) {
      this.positionWrittenAt.delete(key);
      this.leases.forget(key);
      return undefined;
    }
    if (job.status?.phase !== "Running") this.leases.forget(key);
    if (job.metadata.deletionTimestamp) return this.finalize(job);
    if (isFinished(job)) return this.expire(job);
    const phase = job.status?.phase;
    if (phase === "Running") return this.watchRunning(job);
    if (phase === "Queued") return this.watchQueued(job);
    return this.admit(job);
  }

  /** Model-level problems keep the job Pending (it may become runnable); spec-level ones fail it. */
  private async admit(job: JobObject): Promise<ReconcileResult> {
    const { namespace } = splitKey(keyOf(job));
    const model = this.ctx.models.get(`${namespace}/${job.spec.model}`);
    if (!model) {
      return this.pending(
        job,
        JobReason.ModelNotFound,
        `AcceleratedModel ${namespace}/${job.spec.model} does not exist`,
      );
    }
    const validated = findCondition(model.status?.conditions, ModelConditionType.Validated);
    // A model not judged yet: its status update re-enqueues this job.
    if (!validated) return undefined;
    if (validated.status !== "True") {
      return this.pending(
        job,
        JobReason.ModelNotReady,
        `AcceleratedModel ${job.spec.model} is not usable: ${validated.message}`,
      );
    }
    const problem = await this.specProblem(job, model);
    if (problem) return this.fail(job, problem.reason, problem.message);
    if (job.spec.suspend) return this.pending(job, JobReason.Suspended, "suspended (spec.suspend is true)");
    const position = this.positionOf(job);
    const generation = job.metadata.generation ?? 0;
    const conditions = setCondition(
      job.status?.conditions,
      {
        type: JobConditionType.Accepted,
        status: "True",
        reason: JobReason.Queued,
        message: `queued for ${job.spec.model}`,
      },
      generation,
    );
    await this.writeStatus(job, {
      phase: "Queued",
      conditions,
      queuePosition: position,
      attempts: job.status?.attempts ?? 0,
      observedGeneration: generation,
      reason: JobReason.Queued,
      message: `queued at position ${position}`,
    });
    this.positionWrittenAt.set(keyOf(job), Date.now());
    this.ctx.recorder.record(
      job,
      "Normal",
      JobReason.Queued,
      `Accepted for model ${job.spec.model}, queue position ${position}`,
    );
    this.dispatcher.kick();
    return undefined;
  }

  /** What in the job the model can never do, if anything. */
  private async specProblem(
    job: JobObject,
    model: ModelObject,
  ): Promise<{ reason: string; message: string } | undefined> {
    const known = this.ctx.config.gpuClasses;
    const unknown = (job.spec.gpuClasses ?? []).filter(
      (c) => !model.spec.gpuClasses.includes(c) || !known[c],
    );
    if (unknown.length > 0) {
      return {
        reason: JobReason.UnknownGpuClass,
        message: `spec.gpuClasses: ${unknown.join(", ")} not among the model's classes (${model.spec.gpuClasses.join(", ")})`,
      };
    }
    const profiles = { ...(model.spec.profiles ?? {}) };
    const dir = localModelDir(model.spec.source);
    let artifact: Artifact | undefined;
    if (dir) {
      try {
        artifact = await resolveArtifact(dir);
      } catch {
        return undefined; // the model controller reports the artifact; the job waits on the model
      }
      Object.assign(profiles, artifact.info.config.profiles, model.spec.profiles);
    }
    if (artifact && !profiles[job.spec.profile]) {
      return {
        reason: JobReason.InvalidSpec,
        message: `spec.profile: ${job.spec.profile} is not a profile of ${job.spec.model} (${Object.keys(profiles).join(", ")})`,
      };
    }
    if (!artifact) return undefined;
    try {
      checkPrompt(artifact.info, "spec.prompt", job.spec.prompt);
      if (job.spec.negativePrompt) checkPrompt(artifact.info, "spec.negativePrompt", job.spec.negativePrompt);
    } catch (err) {
      return { reason: JobReason.UnknownWords, message: (err as Error).message };
    }
    try {
      checkVideoSize(artifact.info, job.spec.video);
    } catch (err) {
      return { reason: JobReason.DoesNotFit, message: `spec.${(err as Error).message}` };
    }
    try {
      // The knobs the worker will resolve (the profile, then the job's overrides), e.g. more
      // steps than the profile's few-step sampler runs.
      resolveKnobs({ ...artifact.info, config: { ...artifact.info.config, profiles } }, job.spec.profile, {
        acceleration: job.spec.acceleration,
        steps: job.spec.sampling?.steps,
        guidanceScale: job.spec.sampling?.guidanceScale,
      });
    } catch (err) {
      return { reason: JobReason.InvalidSpec, message: `spec.${(err as Error).message}` };
    }
    const need = requiredGiB(artifact, job.spec.video);
    const classes = allowedClasses(job, model.spec.gpuClasses).filter((c) => known[c]);
    const largest = classes.reduce<[string, number]>(
      (best, c) => ((known[c]?.memoryGiB ?? 0) > best[1] ? [c, known[c]?.memoryGiB ?? 0] : best),
      ["", 0],
    );
    if (need > largest[1]) {
      return {
        reason: JobReason.DoesNotFit,
        message: `needs ${need} GiB per worker for ${job.spec.video.width}x${job.spec.video.height}x${job.spec.video.frames}; the largest allowed class ${largest[0]} offers ${largest[1]} GiB`,
      };
    }
    return undefined;
  }

  private positionOf(job: JobObject): number {
    const key = keyOf(job);
    const queued = this.ctx.jobs
      .list()
      .filter(
        (j) =>
          j.metadata.namespace === job.metadata.namespace &&
          j.spec.model === job.spec.model &&
          (j.status?.phase === "Queued" || keyOf(j) === key),
      );
    return queuePositions(queued).get(key) ?? 1;
  }

  private async watchQueued(job: JobObject): Promise<ReconcileResult> {
    if (job.spec.suspend) return this.pending(job, JobReason.Suspended, "suspended (spec.suspend is true)");
    const deadline = this.deadline(job);
    if (deadline !== undefined && deadline <= Date.now()) {
      return this.fail(job, JobReason.DeadlineExceeded, this.deadlineMessage(job));
    }
    return deadline !== undefined ? { requeueAfterMs: Math.max(10, deadline - Date.now()) } : undefined;
  }

  /**
   * Rewrites the queue positions that changed, for the head of each model's queue only: the
   * position written at admission is an upper bound for the rest (it only shrinks unless
   * higher-priority jobs arrive), and rewriting every waiting job on every dispatch would cost
   * O(queue length) writes per job.
   */
  async refreshPositions(): Promise<void> {
    const byModel = new Map<string, JobObject[]>();
    for (const j of this.ctx.jobs.list()) {
      if (j.status?.phase !== "Queued" || j.metadata.deletionTimestamp) continue;
      const m = `${j.metadata.namespace}/${j.spec.model}`;
      byModel.set(m, [...(byModel.get(m) ?? []), j]);
    }
    const now = Date.now();
    const writes: Promise<unknown>[] = [];
    for (const queued of byModel.values()) {
      for (const [key, position] of queuePositions(queued)) {
        if (position > POSITION_HEAD) break;
        const job = this.ctx.jobs.get(key);
        if (!job || job.status?.queuePosition === position) continue;
        if (now - (this.positionWrittenAt.get(key) ?? 0) < POSITION_REFRESH_MS) continue;
        this.positionWrittenAt.set(key, now);
        writes.push(
          this.writeStatus(job, { queuePosition: position, message: `queued at position ${position}` }).catch(
            (err) =>
              this.ctx.log.debug(
                { key, err: String(err) },
                "queue position not written; the next refresh retries",
              ),
          ),
        );
      }
    }
    await Promise.all(writes);
  }

  private async watchRunning(job: JobObject): Promise<ReconcileResult> {
    const a = activeAssignment(job);
    if (!a) return undefined;
    if (job.spec.suspend) {
      await this.dispatcher.revoke(job, {
        phase: "Pending",
        reason: JobReason.Suspended,
        message: "suspended while running; the attempt was cancelled",
      });
      return undefined;
    }
    const now = Date.now();
    const deadline = this.deadline(job);
    if (deadline !== undefined && deadline <= now) {
      await this.dispatcher.revoke(job, {
        phase: "Failed",
        reason: JobReason.DeadlineExceeded,
        message: this.deadlineMessage(job),
      });
      return undefined;
    }
    const pod = this.ctx.pods.get(`${job.metadata.namespace}/${a.worker}`);
    if (this.ctx.pods.hasSynced && (podDead(pod) || pod?.metadata.deletionTimestamp)) {
      await this.dispatcher.revoke(job, {
        phase: "Queued",
        reason: JobReason.WorkerLost,
        message: `worker ${a.worker} ${pod ? `is ${pod.metadata.deletionTimestamp ? "terminating" : pod.status?.phase}` : "disappeared"} during attempt ${a.attempt}`,
      });
      return undefined;
    }
    const leaseMs = leaseMsOf(a, this.ctx.config.workerLeaseSeconds);
    const expires = this.leases.expiresAt(keyOf(job), a, leaseMs, now);
    if (expires <= now) {
      await this.dispatcher.revoke(
        job,
        {
          phase: "Queued",
          reason: JobReason.LeaseExpired,
          message: `worker ${a.worker} did not renew its lease on attempt ${a.attempt} within ${leaseMs / 1000}s`,
        },
        { leaseExpired: true },
      );
      return undefined;
    }
    // The dispatcher labels right after assigning; repair only a label that is clearly missing.
    const assignedAt = Date.parse(
      findCondition(job.status?.conditions, JobConditionType.Running)?.lastTransitionTime ?? "",
    );
    if (job.metadata.labels?.[WORKER_LABEL] !== a.worker && now - assignedAt > LABEL_GRACE_MS) {
      await this.dispatcher.labelForWorker(job, a.worker);
    }
    return { requeueAfterMs: Math.max(50, Math.min(expires, deadline ?? expires) - now + 50) };
  }

  private deadline(job: JobObject): number | undefined {
    if (!job.spec.activeDeadlineSeconds) return undefined;
    const start = Date.parse(job.status?.startTime ?? job.metadata.creationTimestamp ?? "");
    return start + job.spec.activeDeadlineSeconds * 1000;
  }

  private deadlineMessage(job: JobObject): string {
    return `activeDeadlineSeconds ${job.spec.activeDeadlineSeconds} passed before the job finished`;
  }

  private async finalize(job: JobObject): Promise<ReconcileResult> {
    if (activeAssignment(job)) {
      await this.dispatcher.revoke(job, {
        phase: "Cancelled",
        reason: JobReason.Cancelled,
        message: "deleted while running; the attempt was cancelled",
      });
    }
    const finalizers = job.metadata.finalizers ?? [];
    if (!finalizers.includes(JOB_FINALIZER)) return undefined;
    try {
      await this.ctx.kinds.jobs.jsonPatch(job.metadata.namespace, job.metadata.name as string, [
        { op: "test", path: "/metadata/finalizers", value: finalizers },
        { op: "replace", path: "/metadata/finalizers", value: finalizers.filter((f) => f !== JOB_FINALIZER) },
      ]);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    return undefined;
  }

  private async expire(job: JobObject): Promise<ReconcileResult> {
    // The finalizer guards a running attempt only; a finished job must delete freely.
    const finalizers = job.metadata.finalizers ?? [];
    if (finalizers.includes(JOB_FINALIZER)) {
      await this.ctx.kinds.jobs.jsonPatch(job.metadata.namespace, job.metadata.name as string, [
        { op: "test", path: "/metadata/finalizers", value: finalizers },
        { op: "replace", path: "/metadata/finalizers", value: finalizers.filter((f) => f !== JOB_FINALIZER) },
      ]);
    }
    const ttl = job.spec.ttlSecondsAfterFinished;
    if (ttl === undefined) return undefined;
    const done = Date.parse(job.status?.completionTime ?? "") || Date.now();
    const at = done + ttl * 1000;
    if (at > Date.now()) return { requeueAfterMs: at - Date.now() + 10 };
    try {
      await this.ctx.kinds.jobs.delete(job.metadata.namespace, job.metadata.name as string, {
        preconditionUid: job.metadata.uid,
        propagationPolicy: "Background",
      });
      this.ctx.log.info({ key: keyOf(job) }, "deleted after ttlSecondsAfterFinished");
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    return undefined;
  }

  private async pending(job: JobObject, reason: string, message: string): Promise<ReconcileResult> {
    const generation = job.metadata.generation ?? 0;
    const conditions = setCondition(
      job.status?.conditions,
      { type: JobConditionType.Accepted, status: "False", reason, message },
      generation,
    );
    const changed = await this.writeStatus(job, {
      phase: "Pending",
      conditions,
      queuePosition: undefined,
      observedGeneration: generation,
      reason,
      message,
    });
    if (changed)
      this.ctx.recorder.record(job, reason === JobReason.Suspended ? "Normal" : "Warning", reason, message);
    return undefined;
  }

  private async fail(job: JobObject, reason: string, message: string): Promise<ReconcileResult> {
    const generation = job.metadata.generation ?? 0;
    let conditions = setCondition(
      job.status?.conditions,
      {
        type: JobConditionType.Accepted,
        status: job.status?.phase === "Queued" ? "True" : "False",
        reason,
        message,
      },
      generation,
    );
    conditions = setCondition(
      conditions,
      { type: JobConditionType.Failed, status: "True", reason, message },
      generation,
    );
    const changed = await this.writeStatus(job, {
      phase: "Failed",
      conditions,
      queuePosition: undefined,
      observedGeneration: generation,
      completionTime: new Date().toISOString(),
      reason,
      message,
    });
    if (changed) {
      jobsFinished.inc({ namespace: job.metadata.namespace, model: job.spec.model, phase: "Failed" });
      this.ctx.recorder.record(job, "Warning", reason, message);
    }
    return undefined;
  }

  /**
   * Writes status fields with a JSON Patch that tests the resourceVersion it was computed from
   * (a stale cache loses instead of overwriting); skips the write when nothing would change.
   */
  private async writeStatus(
    job: JobObject,
    fields: Partial<Record<keyof JobStatus, unknown>>,
  ): Promise<boolean> {
    const current = (job.status ?? {}) as Record<string, unknown>;
    const changedFields = Object.entries(fields).filter(([k, v]) => {
      if (k === "completionTime" && current.completionTime !== undefined) return false;
      return !sameJson(current[k], v);
    });
    const meaningful = changedFields.filter(([k]) => k !== "completionTime");
    if (meaningful.length === 0) return false;
    const ops = [
      { op: "test" as const, path: "/metadata/resourceVersion", value: job.metadata.resourceVersion },
      ...(job.status ? [] : [{ op: "add" as const, path: "/status", value: {} }]),
      ...setStatusOps(Object.fromEntries(changedFields), current),
    ];
    await this.ctx.kinds.jobs.jsonPatch(job.metadata.namespace, job.metadata.name as string, ops, {
      subresource: "status",
      fieldManager: this.ctx.fieldManager,
    });
    return true;
  }
}
