// Queue-depth autoscaling as a pure plan: given a model's scaling bounds, its active jobs and its
// worker pods, decide how many workers each GPU class should have and which pods to create or
// remove. Scale-up is immediate; scale-down removes only idle workers that have been idle for
// scaleDownDelaySeconds (pending ones first); a busy worker is never removed. Classes that had
// no capacity for too long are skipped in favour of the next class in preference order.

export type WorkerState = "pending" | "ready" | "busy" | "terminating";

export interface WorkerView {
  name: string;
  gpuClass: string;
  state: WorkerState;
  /** Epoch ms since the worker last finished a job or became ready; for idle ready workers. */
  idleSinceMs?: number;
}

export interface DemandJob {
  /** Classes the job may use, in preference order (already restricted to the model's). */
  classes: string[];
  /** Set when the job runs: the class of its worker. */
  runningOn?: string;
}

export interface ScalingInput {
  /** The model's classes in preference order, already filtered to known classes that fit. */
  classes: string[];
  /** Classes that had no capacity for longer than the fallback time. */
  noCapacity: ReadonlySet<string>;
  minWorkers: number;
  maxWorkers: number;
  jobsPerWorker: number;
  scaleDownDelayMs: number;
  jobs: DemandJob[];
  workers: WorkerView[];
  nowMs: number;
}

export interface ScalingPlan {
  desired: Map<string, number>;
  create: Array<{ gpuClass: string; count: number }>;
  remove: string[];
  /** Jobs that no usable class can serve. */
  unservable: number;
  /** Queued plus running jobs. */
  depth: number;
}

/** The first class of `preference` that is usable; when all are out of capacity, the first allowed one. */
export function pickClass(preference: string[], usable: string[], all: string[]): string | undefined {
  return preference.find((c) => usable.includes(c)) ?? preference.find((c) => all.includes(c));
}

export function planScaling(input: ScalingInput): ScalingPlan {
  const usable = input.classes.filter((c) => !input.noCapacity.has(c));
  const demand = new Map<string, number>(input.classes.map((c) => [c, 0]));
  let unservable = 0;
  for (const job of input.jobs) {
    const cls = job.runningOn ?? pickClass(job.classes, usable, input.classes);
    if (cls === undefined || !demand.has(cls)) {
      unservable++;
      continue;
    }
    demand.set(cls, (demand.get(cls) ?? 0) + 1);
  }
  const live = input.workers.filter((w) => w.state !== "terminating");
  const busy = new Map<string, number>();
  for (const w of live) if (w.state === "busy") busy.set(w.gpuClass, (busy.get(w.gpuClass) ?? 0) + 1);

  const desired = new Map<string, number>();
  for (const c of input.classes) desired.set(c, Math.ceil((demand.get(c) ?? 0) / input.jobsPerWorker));
  let total = sum(desired);
  const first = usable[0] ?? input.classes[0];
  if (total < input.minWorkers && first !== undefined) {
    desired.set(first, (desired.get(first) ?? 0) + input.minWorkers - total);
    total = input.minWorkers;
  }
  // Over the cap: trim the least preferred classes first, never below their busy workers.
  for (const c of [...input.classes].reverse()) {
    if (total <= input.maxWorkers) break;
    const floor = busy.get(c) ?? 0;
    const cut = Math.min(total - input.maxWorkers, (desired.get(c) ?? 0) - floor);
    if (cut > 0) {
      desired.set(c, (desired.get(c) ?? 0) - cut);
      total -= cut;
    }
  }
  for (const [c, n] of busy) desired.set(c, Math.max(desired.get(c) ?? 0, n));

  const create: ScalingPlan["create"] = [];
  const remove: string[] = [];
  /** Idle workers of over-provisioned classes still inside their scale-down delay. */
  const reclaimable: WorkerView[] = [];
  const classesSeen = new Set([...input.classes, ...live.map((w) => w.gpuClass)]);
  for (const c of classesSeen) {
    const want = desired.get(c) ?? 0;
    const have = live.filter((w) => w.gpuClass === c);
    if (have.length < want) {
      create.push({ gpuClass: c, count: want - have.length });
      continue;
    }
    let excess = have.length - want;
    // Pending workers of a class without capacity go at once; they hold nothing.
    const pending = have.filter((w) => w.state === "pending");
    const idle = have
      .filter((w) => w.state === "ready")
      .sort((a, b) => (a.idleSinceMs ?? 0) - (b.idleSinceMs ?? 0));
    for (const w of [...pending, ...idle]) {
      if (excess <= 0) break;
      const idleFor = input.nowMs - (w.idleSinceMs ?? input.nowMs);
      if (w.state === "pending" || idleFor >= input.scaleDownDelayMs) remove.push(w.name);
      else reclaimable.push(w);
      excess--;
    }
  }
  // maxWorkers bounds the workers that exist, not only the plan: when a class must grow while
  // others still hold idle workers inside their delay, those go first (another class is
  // waiting for the room), and creations never exceed the room left.
  let room = input.maxWorkers - (live.length - remove.length);
  const wanted = create.reduce((n, c) => n + c.count, 0);
  for (const w of reclaimable) {
    if (room >= wanted) break;
    remove.push(w.name);
    room++;
  }
  const allowed: ScalingPlan["create"] = [];
  for (const c of create) {
    const count = Math.min(c.count, Math.max(0, room));
    if (count > 0) allowed.push({ gpuClass: c.gpuClass, count });
    room -= count;
  }
  return { desired, create: allowed, remove, unservable, depth: input.jobs.length };
}

function sum(m: Map<string, number>): number {
  let s = 0;
  for (const v of m.values()) s += v;
  return s;
}
