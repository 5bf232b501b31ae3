// The registry that owns every framefleet_ metric. Metric objects are defined here once and
// imported where they are observed, so a name cannot be registered twice or drift.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

export const registry = new Registry();

/** Process metrics (CPU, memory, event-loop lag) with the framefleet_ prefix; call once per process. */
export function collectProcessMetrics(): void {
  collectDefaultMetrics({ register: registry, prefix: "framefleet_process_" });
}

export const queueDepth = new Gauge({
  name: "framefleet_queue_depth",
  help: "Queued plus running jobs, per model and GPU class.",
  labelNames: ["namespace", "model", "gpu_class"] as const,
  registers: [registry],
});

export const workers = new Gauge({
  name: "framefleet_workers",
  help: "Worker pods per model, GPU class and state (pending, ready, busy, terminating).",
  labelNames: ["namespace", "model", "gpu_class", "state"] as const,
  registers: [registry],
});

export const dispatchLatency = new Histogram({
  name: "framefleet_dispatch_latency_seconds",
  help: "Time from a job becoming dispatchable to its assignment to a worker.",
  labelNames: ["gpu_class"] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  registers: [registry],
});

export const jobStageDuration = new Histogram({
  name: "framefleet_job_stage_duration_seconds",
  help: "Seconds spent per pipeline stage of a job (queue, load, textEncode, denoise, decode, encode, total).",
  labelNames: ["model", "profile", "stage"] as const,
  buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
  registers: [registry],
});

export const jobGpuSeconds = new Counter({
  name: "framefleet_job_gpu_seconds_total",
  help: "Device-seconds used by finished jobs, per model and GPU class.",
  labelNames: ["model", "gpu_class"] as const,
  registers: [registry],
});

export const jobsFinished = new Counter({
  name: "framefleet_jobs_finished_total",
  help: "Jobs that reached a final phase, per model and phase (Succeeded, Failed, Cancelled).",
  labelNames: ["namespace", "model", "phase"] as const,
  registers: [registry],
});

export const reconcileErrors = new Counter({
  name: "framefleet_reconcile_errors_total",
  help: "Reconciles that returned an error and were requeued, per controller.",
  labelNames: ["controller"] as const,
  registers: [registry],
});

export const apiRequests = new Counter({
  name: "framefleet_api_requests_total",
  help: "Requests this process made to the Kubernetes API server, per verb, resource and response code.",
  labelNames: ["verb", "resource", "code"] as const,
  registers: [registry],
});
