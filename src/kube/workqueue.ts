// A per-key work queue with client-go's semantics: a key is queued at most once, is never handed
// to two workers at once (a key added while it is being processed is re-queued when that
// processing finishes), and failures are retried with the default controller rate limiter: the
// larger of a per-key exponential backoff (5 ms doubling to 1000 s) and a token bucket
// (10 per second, burst 100) shared by all keys.
import { exponentialDelay } from "./backoff.ts";

export interface RateLimiterOptions {
  /** First retry delay (default 5 ms, client-go's). */
  baseDelayMs?: number;
  /** Longest retry delay (default 1000 s, client-go's). */
  maxDelayMs?: number;
  /** Sustained retries per second over all keys (default 10, client-go's). */
  qps?: number;
  /** Retries allowed in a burst before the bucket throttles (default 100, client-go's). */
  burst?: number;
  now?: () => number;
}

/** MaxOf(ItemExponentialFailureRateLimiter, BucketRateLimiter), as in client-go. */
export class ControllerRateLimiter {
  private readonly failures = new Map<string, number>();
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly qps: number;
  private readonly burst: number;
  private readonly now: () => number;
  private tokens: number;
  private last: number;

  constructor(opts: RateLimiterOptions = {}) {
    this.baseDelayMs = opts.baseDelayMs ?? 5;
    this.maxDelayMs = opts.maxDelayMs ?? 1_000_000;
    this.qps = opts.qps ?? 10;
    this.burst = opts.burst ?? 100;
    this.now = opts.now ?? Date.now;
    this.tokens = this.burst;
    this.last = this.now();
  }

  /** The delay before `key`'s next retry; counts one more failure for it. */
  when(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const perKey = exponentialDelay(n, this.baseDelayMs, this.maxDelayMs);
    return Math.max(perKey, this.reserveToken());
  }

  /** Reserves a bucket token and returns how long until it is available (golang's rate.Reserve). */
  private reserveToken(): number {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.qps);
    this.last = t;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.qps) * 1000;
  }

  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  forget(key: string): void {
    this.failures.delete(key);
  }
}

export type ReconcileResult = undefined | { requeueAfterMs: number };
export type Reconciler = (key: string) => Promise<ReconcileResult>;

export interface WorkQueueOptions extends RateLimiterOptions {
  /** Name for logs and metrics. */
  name: string;
  /** Called when a reconcile throws; the key is retried with backoff. */
  onError?: (key: string, err: unknown, retries: number) => void;
  /** Called after every reconcile with its duration, for metrics. */
  onDone?: (key: string, seconds: number, ok: boolean) => void;
}

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly delayed = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly waiters: Array<(key: string | undefined) => void> = [];
  private shuttingDown = false;
  readonly limiter: ControllerRateLimiter;
  private readonly now: () => number;

  constructor(readonly opts: WorkQueueOptions) {
    this.limiter = new ControllerRateLimiter(opts);
    this.now = opts.now ?? Date.now;
  }

  get length(): number {
    return this.queue.length;
  }

  /** Keys waiting, being processed or scheduled for later; for tests and metrics. */
  get pending(): number {
    return this.dirty.size + this.processing.size + this.delayed.size;
  }

  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    if (this.processing.has(key)) return;
    const waiter = this.waiters.shift();
    if (waiter) {
      this.dirty.delete(key);
      this.processing.add(key);
      waiter(key);
    } else {
      this.queue.push(key);
    }
  }

  /** Adds `key` after `ms`; an earlier pending add of the same key wins. */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) {
      this.add(key);
      return;
    }
    const at = this.now() + ms;
    const existing = this.delayed.get(key);
    if (existing && existing.at <= at) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    this.delayed.set(key, { at, timer });
  }

  addRateLimited(key: string): void {
    this.addAfter(key, this.limiter.when(key));
  }

  forget(key: string): void {
    this.limiter.forget(key);
  }

  /** Next key to process, or undefined once the queue shuts down. Call done(key) afterwards. */
  get(): Promise<string | undefined> {
    const key = this.queue.shift();
    if (key !== undefined) {
      this.dirty.delete(key);
      this.processing.add(key);
      return Promise.resolve(key);
    }
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  done(key: string): void {
    this.processing.delete(key);
    if (!this.dirty.has(key)) return;
    this.dirty.delete(key);
    this.add(key);
  }

  shutDown(): void {
    this.shuttingDown = true;
    for (const { timer } of this.delayed.values()) clearTimeout(timer);
    this.delayed.clear();
    for (const w of this.waiters.splice(0)) w(undefined);
  }

  /** Runs `workers` loops calling `reconcile`; resolves when the queue shuts down and they finish. */
  async run(workers: number, reconcile: Reconciler): Promise<void> {
    const loop = async () => {
      for (;;) {
        const key = await this.get();
        if (key === undefined) return;
        const started = performance.now();
        let ok = true;
        try {
          const result = await reconcile(key);
          this.forget(key);
          if (result) this.addAfter(key, result.requeueAfterMs);
        } catch (err) {
          ok = false;
          this.opts.onError?.(key, err, this.limiter.numRequeues(key));
          this.addRateLimited(key);
        } finally {
          this.opts.onDone?.(key, (performance.now() - started) / 1000, ok);
          this.done(key);
        }
      }
    };
    await Promise.all(Array.from({ length: workers }, loop));
  }
}
