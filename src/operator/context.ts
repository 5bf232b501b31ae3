// What every controller of one operator process shares: the API handles, the informers' caches,
// the event recorder, the configuration, and small indexes over the caches.
import type { OperatorConfig } from "../api/index.ts";
import type { EventRecorder, Informer, KubeClient } from "../kube/index.ts";
import type { logger } from "../telemetry/index.ts";
import type { JobObject, Kinds, ModelObject, PodObject } from "./kinds.ts";
import { MODEL_LABEL } from "./kinds.ts";
import type { RetryPolicy } from "./queue.ts";

export interface OperatorSettings {
  config: OperatorConfig;
  retry: RetryPolicy;
  /** Extra arguments for worker pods (the load benchmark's engine mode). */
  workerArgs: string[];
  /** Field manager name for every write. */
  fieldManager: string;
}

export interface Context extends OperatorSettings {
  client: KubeClient;
  kinds: Kinds;
  recorder: EventRecorder;
  models: Informer<ModelObject>;
  jobs: Informer<JobObject>;
  pods: Informer<PodObject>;
  log: typeof logger;
}

export const keyOf = (obj: { metadata: { namespace?: string; name?: string } }): string =>
  `${obj.metadata.namespace}/${obj.metadata.name}`;

export function jobsOfModel(ctx: Context, namespace: string, model: string): JobObject[] {
  return ctx.jobs.list().filter((j) => j.metadata.namespace === namespace && j.spec.model === model);
}

export function workersOfModel(ctx: Context, namespace: string, model: string): PodObject[] {
  return ctx.pods
    .list()
    .filter((p) => p.metadata.namespace === namespace && p.metadata.labels?.[MODEL_LABEL] === model);
}

/** Pod readiness as the kubelet reports it. */
export function podReady(pod: PodObject): boolean {
  return (
    pod.status?.phase === "Running" &&
    !pod.metadata.deletionTimestamp &&
    (pod.status.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True")
  );
}

/** A pod that is gone for good (its process cannot come back to write). */
export function podDead(pod: PodObject | undefined): boolean {
  return !pod || pod.status?.phase === "Failed" || pod.status?.phase === "Succeeded";
}

/**
 * Since when (epoch ms) a pod has been unable to start in a way that says its class has no
 * usable capacity: unschedulable, or bound to a node that cannot start it (no free device).
 */
export function stuckSince(pod: PodObject): number | undefined {
  const unschedulable = unschedulableSince(pod);
  if (unschedulable !== undefined) return unschedulable;
  const waiting = pod.status?.containerStatuses?.[0]?.state?.waiting?.reason;
  if (waiting !== "CreateContainerConfigError" && waiting !== "CreateContainerError") return undefined;
  return Date.parse(pod.status?.startTime ?? pod.metadata.creationTimestamp ?? "") || Date.now();
}

/** The scheduler's verdict on a pending pod: unschedulable since when (epoch ms), if so. */
export function unschedulableSince(pod: PodObject): number | undefined {
  if (pod.status?.phase !== "Pending" || pod.spec?.nodeName) return undefined;
  const c = (pod.status?.conditions ?? []).find((x) => x.type === "PodScheduled");
  if (c?.status !== "False" || c.reason !== "Unschedulable") return undefined;
  return Date.parse(pod.metadata.creationTimestamp ?? "") || Date.now();
}
