// The job queue's rules, as pure functions: order (priority, then age), when a requeued job may
// run again (exponential backoff from its last failure), and which GPU classes it may use.
import { type Assignment, JobConditionType, JobReason } from "../api/index.ts";
import { exponentialDelay } from "../kube/index.ts";
import { findCondition } from "./conditions.ts";
import type { JobObject } from "./kinds.ts";

/** Higher priority first, then older, then by name so the order is total and stable. */
export function compareQueued(a: JobObject, b: JobObject): number {
  const pa = a.spec.priority ?? 0;
  const pb = b.spec.priority ?? 0;
  if (pa !== pb) return pb - pa;
  const ta = Date.parse(a.metadata.creationTimestamp ?? "") || 0;
  const tb = Date.parse(b.metadata.creationTimestamp ?? "") || 0;
  if (ta !== tb) return ta - tb;
  const ka = `${a.metadata.namespace}/${a.metadata.name}`;
  const kb = `${b.metadata.namespace}/${b.metadata.name}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/** Reasons after which a requeued attempt waits out a backoff before it may run again. */
const FAILURE_REASONS = new Set<string>([
  JobReason.WorkerLost,
  JobReason.LeaseExpired,
  JobReason.PipelineError,
]);

export interface RetryPolicy {
  /** First retry delay (default 10 s, as the Job controller's). */
  baseMs: number;
  /** Longest retry delay (default 6 min, as the Job controller's). */
  maxMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { baseMs: 10_000, maxMs: 360_000 };

/** Epoch ms before which a requeued job must not be dispatched (0 when it may run now). */
export function retryNotBefore(job: JobObject, policy: RetryPolicy): number {
  const running = findCondition(job.status?.conditions, JobConditionType.Running);
  if (running?.status !== "False" || !FAILURE_REASONS.has(running.reason)) return 0;
  const failures = Math.max(1, job.status?.attempts ?? 1);
  return Date.parse(running.lastTransitionTime) + exponentialDelay(failures - 1, policy.baseMs, policy.maxMs);
}

export const isFinished = (job: JobObject): boolean =>
  job.status?.phase === "Succeeded" || job.status?.phase === "Failed" || job.status?.phase === "Cancelled";

/** Queued, not suspended, not being deleted, past its retry backoff. */
export function isDispatchable(job: JobObject, now: number, policy: RetryPolicy): boolean {
  return (
    job.status?.phase === "Queued" &&
    !job.spec.suspend &&
    !job.metadata.deletionTimestamp &&
    retryNotBefore(job, policy) <= now
  );
}

/** The current attempt's assignment when the job is Running under it; undefined otherwise. */
export function activeAssignment(job: JobObject): Assignment | undefined {
  const a = job.status?.assignment;
  if (!a || job.status?.phase !== "Running") return undefined;
  return a.attempt === (job.status?.attempts ?? 0) ? a : undefined;
}

/** Classes the job may use, in its preference order, restricted to the model's. */
export function allowedClasses(job: JobObject, modelClasses: readonly string[]): string[] {
  const wanted = job.spec.gpuClasses ?? modelClasses;
  return wanted.filter((c) => modelClasses.includes(c));
}

/** 1-based queue positions by job key, over dispatchable-or-waiting Queued jobs of one model. */
export function queuePositions(queued: JobObject[]): Map<string, number> {
  const sorted = [...queued].sort(compareQueued);
  return new Map(sorted.map((j, i) => [`${j.metadata.namespace}/${j.metadata.name}`, i + 1]));
}
