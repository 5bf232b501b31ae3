// A worker pod's process: loads its model once, serves probes and metrics, watches the jobs
// labelled with its own pod name, and runs each assigned attempt through the pipeline. Every
// status write is a JSON Patch fenced on (worker, attempt), so a worker whose attempt was
// revoked cannot write; progress and lease renewals go out at most about once a second.
import { createHash } from "node:crypto";
import type { Server } from "node:http";
import { join, relative } from "node:path";
import { type Assignment, JobConditionType, JobReason, type JobStatus } from "../api/index.ts";
import {
  EventRecorder,
  Informer,
  isNotFound,
  isTestFailed,
  type JsonPatchOp,
  type KubeClient,
} from "../kube/index.ts";
import { setCondition } from "../operator/conditions.ts";
import { fenceOps, setStatusOps } from "../operator/fencing.ts";
import { serveProbes } from "../operator/http.ts";
import { type JobObject, kinds, WORKER_LABEL } from "../operator/kinds.ts";
import { errorCode, isAbort, isInputError } from "../pipeline/errors.ts";
import type { PipelineModel, ProgressEvent } from "../pipeline/run.ts";
import { runPipeline } from "../pipeline/run.ts";
import { apiRequests, jobGpuSeconds, jobStageDuration, jobsFinished, logger } from "../telemetry/index.ts";

export interface WorkerOptions {
  podName: string;
  namespace: string;
  modelName: string;
  gpuClass: string;
  outputDir: string;
  leaseSeconds: number;
  port: number;
  host: string;
  /** Devices this worker holds, for GPU-seconds (0 on CPU classes). */
  devices: number;
  load: () => Promise<LoadedWorkerModel>;
}

/** A loaded model; backend and backendNote as src/pipeline/local.ts's LoadedModel reports them. */
type LoadedWorkerModel = PipelineModel & { loadSeconds: number; backend?: string; backendNote?: string };

/** Progress is written at most this often (default 1 s). */
const PROGRESS_INTERVAL_MS = 1_000;

interface Current {
  key: string;
  uid: string;
  attempt: number;
  abort: AbortController;
  /** Why the run was aborted: the attempt was revoked, or this worker is shutting down. */
  why?: "revoked" | "draining";
  done: Promise<void>;
}

export class Worker {
  private readonly jobs: Resource;
  private readonly informer: Informer<JobObject>;
  private readonly recorder: EventRecorder;
  private readonly log;
  private model?: LoadedWorkerModel;
  private current?: Current;
  private draining = false;
  private server?: Server;
  /** Attempts seen at the first sync: assigned to an earlier process of this pod, which died. */
  private readonly inherited = new Set<string>();
  private readonly finished = new Set<string>();
  /**
   * True once the job informer's first list is in and the inherited attempts are known. Until
   * then the pod is not ready, so no assignment can reach this process before it can tell an
   * inherited attempt from a new one.
   */
  private synced = false;

  constructor(
    private readonly client: KubeClient,
    private readonly opts: WorkerOptions,
  ) {
    this.jobs = kinds(client).jobs;
    this.log = logger.child({ worker: opts.podName, model: opts.modelName });
    this.informer = new Informer(this.jobs, {
      namespace: opts.namespace,
      labelSelector: `${WORKER_LABEL}=${opts.podName}`,
      onError: (err) => this.log.warn({ err: String(err) }, "job watch restarting"),
    });
    this.recorder = new EventRecorder(client, "framefleet-worker", opts.podName, (err) =>
      this.log.debug({ err: String(err) }, "event not recorded"),
    );
    client.onRequest((verb, resource, code) => apiRequests.inc({ verb, resource, code: String(code) }));
  }

  get ready(): boolean {
    return this.model !== undefined && this.synced && !this.draining;
  }

  async start(): Promise<void> {
    this.server = await serveProbes(this.opts.port, this.opts.host, {
      healthy: () => true,
      ready: () => this.ready,
      status: () => (this.draining ? "draining" : this.model ? "listing its jobs" : "loading model"),
    });
    this.model = await this.opts.load();
    const { loadSeconds, backend, backendNote } = this.model;
    this.log.info({ loadSeconds, backend, backendNote }, "model loaded");
    if (this.opts.devices > 0 && backend?.startsWith("cpu"))
      this.log.warn({ backend, backendNote }, "a GPU worker whose engine runs the denoiser on the CPU");
    // Events of the first list are held back until the jobs an earlier process of this pod was
    // running are known: those are handed back, never resumed. The pod turns ready only after
    // that, so every assignment in the first list predates this process.
    this.informer.on({
      add: (j) => this.synced && this.consider(j),
      update: (j) => this.synced && this.consider(j),
      delete: (j) => this.synced && this.lost(j),
    });
    this.informer.start();
    await this.informer.waitForSync();
    for (const job of this.informer.list()) {
      const a = mine(job, this.opts.podName);
      if (a) this.inherited.add(`${job.metadata.uid}/${a.attempt}`);
    }
    this.synced = true;
    for (const job of this.informer.list()) this.consider(job);
  }

  /** SIGTERM: stop taking work, let the running step finish, hand the job back, exit. */
  async drain(): Promise<void> {
    this.draining = true;
    const cur = this.current;
    if (cur) {
      cur.why = "draining";
      cur.abort.abort();
      await cur.done;
    }
    await this.informer.stop();
    this.server?.close();
    this.client.close();
  }

  private consider(job: JobObject): void {
    const key = `${job.metadata.namespace}/${job.metadata.name}`;
    const a = mine(job, this.opts.podName);
    const cur = this.current;
    if (cur && cur.key === key) {
      if (!a || a.attempt !== cur.attempt || job.metadata.deletionTimestamp || job.spec.suspend) {
        if (!cur.abort.signal.aborted) {
          cur.why = "revoked";
          cur.abort.abort();
          this.log.info({ key, attempt: cur.attempt }, "attempt revoked; cancelling");
        }
        // A later attempt of the same job handed back to this worker (its earlier attempt's
        // lease lapsed, say, while the process was paused): take it once the old one is gone.
        if (a && a.attempt > cur.attempt) void cur.done.then(() => this.reconsider(key));
      }
      return;
    }
    if (!a || this.draining || job.metadata.deletionTimestamp || job.spec.suspend) return;
    const id = `${job.metadata.uid}/${a.attempt}`;
    if (this.finished.has(id)) return;
    if (this.inherited.has(id)) {
      this.inherited.delete(id);
      this.finished.add(id);
      void this.handBack(
        job,
        a,
        JobReason.WorkerLost,
        `worker ${this.opts.podName} restarted during attempt ${a.attempt}`,
      );
      return;
    }
    if (cur) {
      // The previous attempt is still wrapping up (its final write raced this assignment): take
      // the new one as soon as it is done.
      void cur.done.then(() => this.reconsider(key));
      return;
    }
    const abort = new AbortController();
    const entry: Current = {
      key,
      uid: job.metadata.uid as string,
      attempt: a.attempt,
      abort,
      done: Promise.resolve(),
    };
    this.current = entry;
    entry.done = this.run(job, a, entry).finally(() => {
      this.finished.add(id);
      if (this.current === entry) this.current = undefined;
    });
  }

  private reconsider(key: string): void {
    const latest = this.informer.get(key);
    if (latest) this.consider(latest);
  }

  private lost(job: JobObject): void {
    const cur = this.current;
    if (cur && cur.key === `${job.metadata.namespace}/${job.metadata.name}`) {
      cur.why = "revoked";
      cur.abort.abort();
    }
  }

  private async run(job: JobObject, a: Assignment, cur: Current): Promise<void> {
    const model = this.model as PipelineModel & { loadSeconds: number };
    const key = cur.key;
    const log = this.log.child({ key, attempt: a.attempt });
    const startedAt = Date.now();
    const queueSeconds = Math.max(0, (startedAt - Date.parse(job.metadata.creationTimestamp ?? "")) / 1000);
    let latest: ProgressEvent | undefined;
    let written = "";
    let lastWrite = Date.now();
    let status: JobStatus = job.status ?? {};
    const generation = job.metadata.generation ?? 0;
    let announced = false;
    const renew = async () => {
      const progress = latest ? progressOf(latest) : undefined;
      lastWrite = Date.now();
      written = JSON.stringify(progress);
      // The first write of the attempt also says it is generating; a job done within the first
      // second needs no write before its result (the dispatcher's assignment started the lease).
      const first = announced
        ? {}
        : {
            conditions: status.conditions,
            reason: JobReason.Generating,
            message: `generating on ${this.opts.podName}`,
          };
      await this.write(job, a, { ...(progress ? { progress } : {}), ...first }, [
        { op: "add", path: "/status/assignment/renewTime", value: new Date().toISOString() },
      ]);
      announced = true;
    };
    // Lease renewal and progress: a tick every second writes when progress moved, or when a
    // third of the lease has passed without a write.
    const leaseMs = (a.leaseSeconds ?? this.opts.leaseSeconds) * 1000;
    const ticker = setInterval(() => {
      const due = Date.now() - lastWrite >= leaseMs / 3;
      const moved = latest !== undefined && JSON.stringify(progressOf(latest)) !== written;
      if (!(due || moved) || cur.abort.signal.aborted) return;
      renew().catch((err) => this.onWriteError(err, cur, log));
    }, PROGRESS_INTERVAL_MS);
    try {
      status = {
        ...status,
        conditions: setCondition(
          status.conditions,
          {
            type: JobConditionType.Running,
            status: "True",
            reason: JobReason.Generating,
            message: `attempt ${a.attempt} running on ${this.opts.podName}`,
          },
          generation,
        ),
      };
      log.info("attempt started");
      const report = await runPipeline(
        model,
        { ...job.spec, seed: job.spec.seed ?? seedFromUid(job.metadata.uid) },
        {
          outDir: this.opts.outputDir,
          name: join(job.metadata.namespace as string, job.metadata.name as string),
          attempt: a.attempt,
          signal: cur.abort.signal,
          loadSeconds: model.loadSeconds,
          onProgress: (p) => {
            latest = p;
          },
        },
      );
      clearInterval(ticker);
      const total = (Date.now() - startedAt) / 1000;
      const t = report.timings;
      const timings = {
        queue: round(queueSeconds),
        load: round(model.loadSeconds),
        textEncode: round(t.textEncode),
        denoise: round(t.denoise),
        decode: round(t.decode),
        encode: round(t.encode),
        total: round(total),
        gpuSeconds: round(total * this.opts.devices),
      };
      let conditions = setCondition(
        status.conditions,
        {
          type: JobConditionType.Running,
          status: "False",
          reason: JobReason.Completed,
          message: "attempt finished",
        },
        generation,
      );
      conditions = setCondition(
        conditions,
        {
          type: JobConditionType.Succeeded,
          status: "True",
          reason: JobReason.Completed,
          message: `video written to ${relative(this.opts.outputDir, report.output.path)}`,
        },
        generation,
      );
      await this.write(job, a, {
        phase: "Succeeded",
        conditions,
        progress: { stage: "done", step: 1, totalSteps: 1, percent: 100 },
        completionTime: new Date().toISOString(),
        output: {
          uri: `file://${report.output.path}`,
          bytes: report.output.bytes,
          sha256: report.output.sha256,
          width: report.width,
          height: report.height,
          frames: report.frames,
        },
        timings,
        reason: JobReason.Completed,
        message: `succeeded on attempt ${a.attempt}`,
      });
      for (const [stage, seconds] of Object.entries(timings)) {
        if (stage !== "gpuSeconds")
          jobStageDuration.observe({ model: this.opts.modelName, profile: job.spec.profile, stage }, seconds);
      }
      jobGpuSeconds.inc({ model: this.opts.modelName, gpu_class: this.opts.gpuClass }, timings.gpuSeconds);
      jobsFinished.inc({ namespace: this.opts.namespace, model: this.opts.modelName, phase: "Succeeded" });
      this.recorder.record(
        job,
        "Normal",
        JobReason.Completed,
        `Attempt ${a.attempt} on ${this.opts.podName} wrote ${report.output.bytes} bytes in ${timings.total}s on ${report.backend}`,
      );
      log.info(
        { seconds: timings.total, bytes: report.output.bytes, backend: report.backend },
        "attempt succeeded",
      );
    } catch (err) {
      clearInterval(ticker);
      await this.finishWithError(job, a, cur, err, status, log).catch((e) => this.onWriteError(e, cur, log));
    }
  }

  private async finishWithError(
    job: JobObject,
    a: Assignment,
    cur: Current,
    err: unknown,
    status: JobStatus,
    log: typeof this.log,
  ): Promise<void> {
    if (isAbort(err) || cur.abort.signal.aborted) {
      if (cur.why === "draining") {
        await this.handBack(
          job,
          a,
          JobReason.Requeued,
          `worker ${this.opts.podName} shut down during attempt ${a.attempt}`,
        );
      }
      log.info({ why: cur.why }, "attempt cancelled; partial files removed");
      return;
    }
    const message = `${errorCode(err) ?? "E_INTERNAL"}: ${(err as Error).message}`;
    const generation = job.metadata.generation ?? 0;
    const attempts = job.status?.attempts ?? a.attempt;
    const permanent = isInputError(err) || attempts > (job.spec.backoffLimit ?? 3);
    const reason = isInputError(err)
      ? JobReason.InvalidSpec
      : permanent
        ? JobReason.BackoffLimitExceeded
        : JobReason.PipelineError;
    let conditions = setCondition(
      status.conditions,
      { type: JobConditionType.Running, status: "False", reason: JobReason.PipelineError, message },
      generation,
    );
    if (permanent)
      conditions = setCondition(
        conditions,
        { type: JobConditionType.Failed, status: "True", reason, message },
        generation,
      );
    await this.write(job, a, {
      phase: permanent ? "Failed" : "Queued",
      conditions,
      reason,
      message,
      ...(permanent ? { completionTime: new Date().toISOString() } : {}),
    });
    if (permanent)
      jobsFinished.inc({ namespace: this.opts.namespace, model: this.opts.modelName, phase: "Failed" });
    this.recorder.record(job, "Warning", reason, message);
    log.warn({ err: message, permanent }, "attempt failed");
  }

  /** Gives the attempt back to the queue; the dispatcher clears the assignment when it reassigns. */
  private async handBack(job: JobObject, a: Assignment, reason: string, message: string): Promise<void> {
    const conditions = setCondition(
      job.status?.conditions,
      { type: JobConditionType.Running, status: "False", reason, message },
      job.metadata.generation ?? 0,
    );
    try {
      await this.write(job, a, { phase: "Queued", conditions, reason, message });
      this.recorder.record(job, "Normal", reason, message);
      this.log.info(
        { key: `${job.metadata.namespace}/${job.metadata.name}`, attempt: a.attempt, reason },
        "attempt handed back",
      );
    } catch (err) {
      if (!isTestFailed(err) && !isNotFound(err)) throw err;
    }
  }

  /** A fenced status write: it fails (422) once the attempt is no longer this worker's. */
  private async write(
    job: JobObject,
    a: Assignment,
    fields: Record<string, unknown>,
    extraOps: JsonPatchOp[] = [],
  ): Promise<void> {
    await this.jobs.jsonPatch(
      job.metadata.namespace,
      job.metadata.name as string,
      [
        ...fenceOps({ worker: this.opts.podName, attempt: a.attempt }),
        ...extraOps,
        ...setStatusOps(fields, job.status ?? {}),
      ],
      { subresource: "status", fieldManager: "framefleet-worker" },
    );
  }

  private onWriteError(err: unknown, cur: Current, log: typeof this.log): void {
    if (isTestFailed(err) || isNotFound(err)) {
      // The fence held: the attempt is no longer ours. Stop working on it.
      if (!cur.abort.signal.aborted) {
        cur.why = "revoked";
        cur.abort.abort();
      }
      log.info("status write refused by the fence; attempt abandoned");
      return;
    }
    log.warn({ err: String(err) }, "status write failed; will retry on the next tick");
  }
}

type Resource = ReturnType<typeof kinds>["jobs"];

/** The job's assignment when it is this worker's current attempt. */
function mine(job: JobObject, pod: string): Assignment | undefined {
  const a = job.status?.assignment;
  if (!a || a.worker !== pod || job.status?.phase !== "Running") return undefined;
  return a.attempt === job.status?.attempts ? a : undefined;
}

const STAGE_WEIGHT: Record<string, [number, number]> = {
  validate: [0, 2],
  textEncode: [2, 5],
  denoise: [5, 85],
  decode: [85, 92],
  encode: [92, 98],
  preview: [98, 100],
};

function progressOf(p: ProgressEvent): NonNullable<JobStatus["progress"]> {
  const [lo, hi] = STAGE_WEIGHT[p.stage] ?? [0, 100];
  const frac = p.totalSteps > 0 ? p.step / p.totalSteps : 0;
  return {
    stage: p.stage,
    step: p.step,
    totalSteps: p.totalSteps,
    percent: Math.min(100, Math.round(lo + (hi - lo) * frac)),
  };
}

const round = (s: number | undefined) => Math.round((s ?? 0) * 1000) / 1000;

/** A job without a seed gets one from its UID: stable across retries, different between jobs. */
export function seedFromUid(uid: string | undefined): number {
  return uid ? createHash("sha256").update(uid).digest().readUInt32BE(0) : 0;
}
