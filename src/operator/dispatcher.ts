// The dispatcher: the only writer of job assignments. It runs on the leader only, as one serial
// loop, so it never races itself; against a second operator that briefly also thinks it leads,
// every assignment is a JSON Patch that tests the attempt count it was computed from, so only
// one of two assignments of the same attempt can land. It gives the first dispatchable job of a
// model (priority, then age) to an idle ready worker of an allowed class (a worker whose lease
// just lapsed sits out one lease), and it revokes assignments (worker lost, lease expired,
// cancelled, handed back).
import { type Assignment, JobConditionType, JobReason } from "../api/index.ts";
import { isNotFound, isTestFailed, type JsonPatchOp } from "../kube/index.ts";
import { dispatchLatency } from "../telemetry/index.ts";
import { setCondition } from "./conditions.ts";
import { type Context, keyOf, podReady } from "./context.ts";
import { assignOps, expiryFenceOps, fenceOps, setStatusOps } from "./fencing.ts";
import {
  GPU_CLASS_LABEL,
  JOB_FINALIZER,
  type JobObject,
  MODEL_LABEL,
  type PodObject,
  WORKER_LABEL,
} from "./kinds.ts";
import { leaseMsOf } from "./lease-clock.ts";
import { activeAssignment, allowedClasses, compareQueued, isDispatchable, retryNotBefore } from "./queue.ts";

/** How long an assignment is assumed without the informer confirming it (default 10 s). */
const ASSUME_MS = 10_000;

export type RevokeOutcome =
  | { phase: "Queued"; reason: string; message: string }
  | { phase: "Failed"; reason: string; message: string }
  | { phase: "Cancelled"; reason: string; message: string }
  | { phase: "Pending"; reason: string; message: string };

export class Dispatcher {
  /** Workers given a job whose informer update has not arrived yet: pod key -> job key. */
  private readonly assumed = new Map<string, string>();
  /** Jobs assigned whose update the informer has not shown yet: job key -> attempt. */
  private readonly assumedJobs = new Map<string, number>();
  private readonly assumedAt = new Map<string, number>();
  /** When each job was first seen dispatchable, for the latency histogram. */
  private readonly dispatchableSince = new Map<string, number>();
  /** When each worker was first seen idle and ready. */
  private readonly idleSince = new Map<string, number>();
  /**
   * Workers whose lease on an attempt lapsed: pod key -> when they may be given work again (one
   * lease later). A worker that stopped renewing is likely paused or cut off; a new attempt
   * given to it at once would likely lapse too.
   */
  private readonly lapsed = new Map<string, number>();
  private running = false;
  private again = false;
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(private readonly ctx: Context) {}

  /** Asks for a dispatch pass soon; passes never overlap. */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    setImmediate(() => void this.loop());
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private async loop(): Promise<void> {
    try {
      do {
        this.again = false;
        await this.pass();
      } while (this.again && !this.stopped);
    } catch (err) {
      this.ctx.log.error({ err }, "dispatch pass failed");
      this.again = true;
    } finally {
      this.running = false;
      if (this.again) setTimeout(() => this.kick(), 200);
    }
  }

  /** Busy workers: running a job's current attempt, or just assigned one. */
  busyWorkers(): Set<string> {
    const busy = new Set<string>();
    for (const job of this.ctx.jobs.list()) {
      const a = activeAssignment(job);
      if (a) busy.add(`${job.metadata.namespace}/${a.worker}`);
    }
    for (const [pod, jobKey] of this.assumed) {
      const job = this.ctx.jobs.get(jobKey);
      if (job && !activeAssignment(job) && job.status?.phase === "Queued") busy.add(pod);
      else this.assumed.delete(pod);
    }
    return busy;
  }

  private async pass(): Promise<void> {
    const now = Date.now();
    const busy = this.busyWorkers();
    const idle = new Map<string, PodObject[]>();
    let wakeAt = Number.POSITIVE_INFINITY;
    for (const [key, until] of this.lapsed) {
      if (until <= now) this.lapsed.delete(key);
      else wakeAt = Math.min(wakeAt, until);
    }
    for (const pod of this.ctx.pods.list()) {
      const key = keyOf(pod);
      if (!podReady(pod) || busy.has(key) || this.lapsed.has(key)) {
        this.idleSince.delete(key);
        continue;
      }
      if (!this.idleSince.has(key)) this.idleSince.set(key, now);
      const model = `${pod.metadata.namespace}/${pod.metadata.labels?.[MODEL_LABEL]}`;
      idle.set(model, [...(idle.get(model) ?? []), pod]);
    }
    const byModel = new Map<string, JobObject[]>();
    let nextRetry = Number.POSITIVE_INFINITY;
    for (const job of this.ctx.jobs.list()) {
      const key = keyOf(job);
      // Assigned by an earlier pass whose write the informer has not shown yet.
      const assumedAttempt = this.assumedJobs.get(key);
      if (assumedAttempt !== undefined) {
        if (
          (job.status?.attempts ?? 0) >= assumedAttempt ||
          now - (this.assumedAt.get(key) ?? 0) > ASSUME_MS
        ) {
          this.assumedJobs.delete(key);
          this.assumedAt.delete(key);
        } else continue;
      }
      if (!isDispatchable(job, now, this.ctx.retry)) {
        this.dispatchableSince.delete(key);
        const at = job.status?.phase === "Queued" ? retryNotBefore(job, this.ctx.retry) : 0;
        if (at > now) nextRetry = Math.min(nextRetry, at);
        continue;
      }
      if (!this.dispatchableSince.has(key)) this.dispatchableSince.set(key, now);
      const model = `${job.metadata.namespace}/${job.spec.model}`;
      byModel.set(model, [...(byModel.get(model) ?? []), job]);
    }
    clearTimeout(this.timer);
    const next = Math.min(nextRetry, wakeAt);
    if (next < Number.POSITIVE_INFINITY) {
      this.timer = setTimeout(() => this.kick(), Math.max(10, next - now + 5));
    }
    const writes: Promise<void>[] = [];
    for (const [modelKey, queued] of byModel) {
      const workers = idle.get(modelKey);
      const model = this.ctx.models.get(modelKey);
      if (!workers?.length || !model) continue;
      for (const job of queued.sort(compareQueued)) {
        if (!workers.length) break;
        const classes = allowedClasses(job, model.spec.gpuClasses);
        let pick: PodObject | undefined;
        for (const cls of classes) {
          pick = workers.find((w) => w.metadata.labels?.[GPU_CLASS_LABEL] === cls);
          if (pick) break;
        }
        if (!pick) continue;
        workers.splice(workers.indexOf(pick), 1);
        this.assumed.set(keyOf(pick), keyOf(job));
        this.assumedJobs.set(keyOf(job), (job.status?.attempts ?? 0) + 1);
        this.assumedAt.set(keyOf(job), now);
        writes.push(this.assign(job, pick));
      }
    }
    await Promise.all(writes);
  }

  private async assign(job: JobObject, pod: PodObject): Promise<void> {
    const key = keyOf(job);
    const ns = job.metadata.namespace as string;
    const name = job.metadata.name as string;
    const previous = job.status?.attempts ?? 0;
    const assignment: Assignment = {
      worker: pod.metadata.name as string,
      node: pod.spec?.nodeName,
      gpuClass: pod.metadata.labels?.[GPU_CLASS_LABEL],
      attempt: previous + 1,
      renewTime: new Date().toISOString(),
      leaseSeconds: this.ctx.config.workerLeaseSeconds,
    };
    const generation = job.metadata.generation ?? 0;
    const conditions = setCondition(
      job.status?.conditions,
      {
        type: JobConditionType.Running,
        status: "True",
        reason: JobReason.Assigned,
        message: `attempt ${assignment.attempt} assigned to ${assignment.worker} (${assignment.gpuClass ?? "?"} on ${assignment.node ?? "?"})`,
      },
      generation,
    );
    const status = job.status ?? {};
    const ops = assignOps(
      previous,
      assignment,
      {
        phase: "Running",
        conditions,
        queuePosition: undefined,
        startTime: status.startTime ?? new Date().toISOString(),
        reason: JobReason.Assigned,
        message: conditions.find((c) => c.type === JobConditionType.Running)?.message,
      },
      status,
    );
    try {
      await this.ctx.kinds.jobs.jsonPatch(ns, name, ops, {
        subresource: "status",
        fieldManager: this.ctx.fieldManager,
      });
    } catch (err) {
      this.assumed.delete(`${ns}/${assignment.worker}`);
      this.assumedJobs.delete(key);
      if (isTestFailed(err) || isNotFound(err)) {
        this.ctx.log.info(
          { key, worker: assignment.worker },
          "assignment lost a race; the job changed first",
        );
        this.kick();
        return;
      }
      throw err;
    }
    const since = Math.max(
      this.dispatchableSince.get(key) ?? 0,
      this.idleSince.get(`${ns}/${assignment.worker}`) ?? 0,
    );
    if (since > 0)
      dispatchLatency.observe({ gpu_class: assignment.gpuClass ?? "" }, (Date.now() - since) / 1000);
    this.dispatchableSince.delete(key);
    this.idleSince.delete(`${ns}/${assignment.worker}`);
    // The label only tells the worker where to look; the fenced status write above is the
    // decision. The next pass need not wait for it (the job controller repairs a missing label).
    this.labelForWorker(job, assignment.worker).catch((err) =>
      this.ctx.log.warn({ key, err: String(err) }, "worker label not written; the job controller retries"),
    );
    this.ctx.recorder.record(
      job,
      "Normal",
      JobReason.Assigned,
      `Attempt ${assignment.attempt} assigned to worker ${assignment.worker} (${assignment.gpuClass ?? "?"})`,
    );
  }

  /** Labels the job with its worker (workers watch by it) and adds the cancellation finalizer. */
  async labelForWorker(job: JobObject, worker: string): Promise<void> {
    const finalizers = job.metadata.finalizers ?? [];
    await this.ctx.kinds.jobs.mergePatch(
      job.metadata.namespace,
      job.metadata.name as string,
      {
        metadata: {
          labels: { [WORKER_LABEL]: worker },
          ...(finalizers.includes(JOB_FINALIZER) ? {} : { finalizers: [...finalizers, JOB_FINALIZER] }),
        },
      },
      { fieldManager: this.ctx.fieldManager },
    );
  }

  /**
   * Ends the current attempt (fenced on its worker and attempt number) and moves the job to the
   * outcome's phase; a requeue past backoffLimit becomes Failed/BackoffLimitExceeded. With
   * `leaseExpired` the write also tests the renewal it was judged on. Returns false when the
   * assignment (or that renewal) had already changed.
   */
  async revoke(
    job: JobObject,
    outcome: RevokeOutcome,
    opts: { leaseExpired?: boolean } = {},
  ): Promise<boolean> {
    const a = job.status?.assignment;
    const status = job.status ?? {};
    const attempts = status.attempts ?? 0;
    let final = outcome;
    if (
      outcome.phase === "Queued" &&
      attempts > (job.spec.backoffLimit ?? 3) &&
      outcome.reason !== JobReason.Requeued
    ) {
      final = {
        phase: "Failed",
        reason: JobReason.BackoffLimitExceeded,
        message: `${outcome.message}; ${attempts} attempts exceed backoffLimit ${job.spec.backoffLimit}`,
      };
    }
    const generation = job.metadata.generation ?? 0;
    let conditions = setCondition(
      status.conditions,
      { type: JobConditionType.Running, status: "False", reason: outcome.reason, message: outcome.message },
      generation,
    );
    if (final.phase === "Failed") {
      conditions = setCondition(
        conditions,
        { type: JobConditionType.Failed, status: "True", reason: final.reason, message: final.message },
        generation,
      );
    }
    const finished = final.phase === "Failed" || final.phase === "Cancelled";
    const ops: JsonPatchOp[] = [
      ...(a ? (opts.leaseExpired ? expiryFenceOps(a) : fenceOps(a)) : []),
      ...setStatusOps(
        {
          phase: final.phase,
          conditions,
          reason: final.reason,
          message: final.message,
          assignment: undefined,
          progress: undefined,
          completionTime: finished ? new Date().toISOString() : undefined,
        },
        status,
      ),
    ];
    try {
      await this.ctx.kinds.jobs.jsonPatch(job.metadata.namespace, job.metadata.name as string, ops, {
        subresource: "status",
        fieldManager: this.ctx.fieldManager,
      });
    } catch (err) {
      if (isTestFailed(err) || isNotFound(err)) return false;
      throw err;
    }
    if (opts.leaseExpired && a) {
      this.lapsed.set(
        `${job.metadata.namespace}/${a.worker}`,
        Date.now() + leaseMsOf(a, this.ctx.config.workerLeaseSeconds),
      );
    }
    if (job.metadata.labels?.[WORKER_LABEL]) {
      await this.ctx.kinds.jobs
        .mergePatch(
          job.metadata.namespace,
          job.metadata.name as string,
          { metadata: { labels: { [WORKER_LABEL]: null } } },
          { fieldManager: this.ctx.fieldManager },
        )
        .catch((err) => {
          if (!isNotFound(err)) throw err;
        });
    }
    this.ctx.recorder.record(
      job,
      final.phase === "Queued" || final.phase === "Pending" ? "Normal" : "Warning",
      final.reason,
      final.message,
    );
    this.kick();
    return true;
  }
}
