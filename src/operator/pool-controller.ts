// The autoscaler's reconciler, per model: turns the pure scaling plan into pod creations and
// deletions, tracks how long each idle worker has been idle, and marks a GPU class as out of
// capacity when its workers stay unschedulable for noCapacityFallbackSeconds, so the plan
// falls back to the next class; the mark expires after a cooldown and the class is tried again.
import { ModelConditionType, ModelReason } from "../api/index.ts";
import { isNotFound, type ReconcileResult } from "../kube/index.ts";
import { planScaling, type WorkerView } from "./autoscaler.ts";
import { findCondition } from "./conditions.ts";
import { type Context, jobsOfModel, podDead, podReady, stuckSince, workersOfModel } from "./context.ts";
import type { Dispatcher } from "./dispatcher.ts";
import { GPU_CLASS_LABEL, type ModelObject } from "./kinds.ts";
import { pickPort, podPort, workerPod } from "./podtemplate.ts";
import { activeAssignment, allowedClasses } from "./queue.ts";

/** How long a class stays skipped after running out of capacity (default 5 min), before it is retried. */
const NO_CAPACITY_COOLDOWN_MS = 5 * 60_000;
/** How long a created pod may take to appear in the informer before it is no longer expected (default 30 s). */
const CREATED_EXPECTATION_MS = 30_000;
/** Scaling decisions are re-evaluated at least this often while workers exist (default 5 s). */
const RESYNC_MS = 5_000;

export class PoolController {
  private readonly idleSince = new Map<string, number>();
  private readonly noCapacityUntil = new Map<string, Map<string, number>>();
  /** Pods created per model that the informer has not shown yet: name -> class and time. */
  private readonly created = new Map<string, Map<string, { gpuClass: string; at: number }>>();
  /** Ports of pods just created, until the informer shows them. */
  private readonly portsInFlight = new Set<number>();

  constructor(
    private readonly ctx: Context,
    private readonly dispatcher: Dispatcher,
  ) {}

  noCapacity(modelKey: string): ReadonlySet<string> {
    const marks = this.noCapacityUntil.get(modelKey);
    const now = Date.now();
    return new Set(
      [...(marks ?? new Map<string, number>())].filter(([, until]) => until > now).map(([c]) => c),
    );
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const model = this.ctx.models.get(key);
    if (!model || model.metadata.deletionTimestamp) return undefined;
    if (findCondition(model.status?.conditions, ModelConditionType.Validated)?.status !== "True")
      return undefined;
    const ns = model.metadata.namespace as string;
    const name = model.metadata.name as string;
    const now = Date.now();
    const fallbackMs = this.ctx.config.autoscaler.noCapacityFallbackSeconds * 1000;
    const busy = this.dispatcher.busyWorkers();
    const pods = workersOfModel(this.ctx, ns, name);
    const views: WorkerView[] = [];
    let soonest = Number.POSITIVE_INFINITY;
    for (const pod of pods) {
      const pkey = `${ns}/${pod.metadata.name}`;
      const cls = pod.metadata.labels?.[GPU_CLASS_LABEL] ?? "";
      if (pod.metadata.deletionTimestamp || podDead(pod)) {
        views.push({ name: pod.metadata.name as string, gpuClass: cls, state: "terminating" });
        if (podDead(pod) && !pod.metadata.deletionTimestamp)
          await this.deletePod(pod.metadata.name as string, ns, "exited");
        continue;
      }
      if (busy.has(pkey)) {
        this.idleSince.delete(pkey);
        views.push({ name: pod.metadata.name as string, gpuClass: cls, state: "busy" });
      } else if (podReady(pod)) {
        if (!this.idleSince.has(pkey)) this.idleSince.set(pkey, now);
        views.push({
          name: pod.metadata.name as string,
          gpuClass: cls,
          state: "ready",
          idleSinceMs: this.idleSince.get(pkey),
        });
      } else {
        views.push({ name: pod.metadata.name as string, gpuClass: cls, state: "pending" });
        const since = stuckSince(pod);
        if (since !== undefined) {
          if (now - since >= fallbackMs) this.markNoCapacity(model, cls, now);
          else soonest = Math.min(soonest, since + fallbackMs);
        }
      }
    }
    // Pods this controller created that the informer has not shown yet count as pending, so
    // two reconciles in a row never create the same worker twice.
    const created = this.created.get(key) ?? new Map<string, { gpuClass: string; at: number }>();
    for (const [podName, c] of created) {
      if (pods.some((p) => p.metadata.name === podName) || now - c.at > CREATED_EXPECTATION_MS)
        created.delete(podName);
      else views.push({ name: podName, gpuClass: c.gpuClass, state: "pending" });
    }
    this.created.set(key, created);
    const usableClasses = model.spec.gpuClasses.filter((c) => {
      const m = model.status?.memory?.find((x) => x.gpuClass === c);
      return this.ctx.config.gpuClasses[c] && (m ? m.fits : true);
    });
    const jobs = jobsOfModel(this.ctx, ns, name)
      .filter((j) => j.status?.phase === "Queued" || activeAssignment(j))
      .map((j) => ({
        classes: allowedClasses(j, usableClasses),
        runningOn: activeAssignment(j)?.gpuClass,
      }));
    const s = model.spec.scaling;
    const external = !this.ctx.config.autoscaler.enabled;
    const plan = planScaling({
      classes: usableClasses,
      noCapacity: this.noCapacity(key),
      minWorkers: external
        ? Math.max(s.minWorkers, Math.min(s.maxWorkers, model.spec.replicas ?? s.minWorkers))
        : s.minWorkers,
      maxWorkers: external
        ? Math.max(s.minWorkers, Math.min(s.maxWorkers, model.spec.replicas ?? s.minWorkers))
        : s.maxWorkers,
      jobsPerWorker: external ? Number.MAX_SAFE_INTEGER : s.jobsPerWorker,
      scaleDownDelayMs: s.scaleDownDelaySeconds * 1000,
      jobs,
      workers: views,
      nowMs: now,
    });
    // Removals first: the room they free is what creations may use.
    for (const podName of plan.remove) {
      await this.deletePod(podName, ns, "idle");
      this.idleSince.delete(`${ns}/${podName}`);
    }
    if (plan.remove.length > 0) {
      this.ctx.recorder.record(
        model,
        "Normal",
        "ScaledDown",
        `Removed ${plan.remove.length} idle worker(s): ${plan.remove.join(", ")}`,
      );
    }
    for (const { gpuClass, count } of plan.create) {
      const cls = this.ctx.config.gpuClasses[gpuClass];
      if (!cls) continue;
      for (let i = 0; i < count; i++) {
        const used = new Set(
          this.ctx.pods
            .list()
            .map(podPort)
            .filter((p): p is number => p !== undefined),
        );
        for (const p of this.portsInFlight) used.add(p);
        const port = pickPort(used);
        this.portsInFlight.add(port);
        const pod = workerPod(model, gpuClass, cls, {
          port,
          image: this.ctx.config.workerImage,
          serviceAccount: this.ctx.config.workerServiceAccount,
          leaseSeconds: this.ctx.config.workerLeaseSeconds,
          extraArgs: this.ctx.workerArgs,
        });
        const createdPod = await this.ctx.kinds.pods
          .create(ns, pod, { fieldManager: this.ctx.fieldManager })
          .finally(() => setTimeout(() => this.portsInFlight.delete(port), 10_000));
        created.set(createdPod.metadata.name as string, { gpuClass, at: Date.now() });
        this.ctx.log.info({ key, pod: createdPod.metadata.name, gpuClass }, "worker created");
      }
      this.ctx.recorder.record(
        model,
        "Normal",
        "ScaledUp",
        `Created ${count} ${gpuClass} worker(s) for a queue depth of ${plan.depth}`,
      );
    }
    // Come back when an idle worker's delay ends, when a pending pod reaches the fallback time,
    // or on the resync period while workers exist.
    for (const v of views) {
      if (v.state === "ready" && v.idleSinceMs !== undefined)
        soonest = Math.min(soonest, v.idleSinceMs + s.scaleDownDelaySeconds * 1000);
    }
    if (views.length > 0) soonest = Math.min(soonest, now + RESYNC_MS);
    return soonest < Number.POSITIVE_INFINITY
      ? { requeueAfterMs: Math.max(50, soonest - now + 20) }
      : undefined;
  }

  private markNoCapacity(model: ModelObject, cls: string, now: number): void {
    const key = `${model.metadata.namespace}/${model.metadata.name}`;
    const marks = this.noCapacityUntil.get(key) ?? new Map<string, number>();
    if ((marks.get(cls) ?? 0) > now) return;
    marks.set(cls, now + NO_CAPACITY_COOLDOWN_MS);
    this.noCapacityUntil.set(key, marks);
    const next = model.spec.gpuClasses.find((c) => c !== cls && !marks.has(c));
    this.ctx.recorder.record(
      model,
      "Warning",
      ModelReason.NoCapacity,
      `No ${cls} capacity for ${this.ctx.config.autoscaler.noCapacityFallbackSeconds}s; ${next ? `falling back to ${next}` : "no other class to fall back to"}`,
    );
  }

  private async deletePod(name: string, ns: string, why: string): Promise<void> {
    try {
      await this.ctx.kinds.pods.delete(ns, name);
      this.ctx.log.info({ key: `${ns}/${name}`, why }, "worker removed");
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
}
