// Leader election on a coordination.k8s.io/v1 Lease, after client-go's leaderelection package:
// candidates try every retryPeriod; a lease counts as expired only when this process has seen
// the same record for leaseDuration by its own clock (so clock skew between hosts cannot hand
// out two leases); the leader renews every retryPeriod and steps down when it has not renewed
// within renewDeadline. Writes are replaces guarded by resourceVersion, so two candidates
// racing for an expired lease cannot both win.
import { sleep } from "./backoff.ts";
import { isConflict, isNotFound, type KubeObject } from "./client.ts";
import type { Resource } from "./resource.ts";

export interface LeaseObject extends KubeObject {
  spec?: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  /** How long a lease lasts without renewal (default 15 s). */
  leaseDurationMs?: number;
  /** The leader steps down when it has not renewed for this long (default 10 s). */
  renewDeadlineMs?: number;
  /** How often candidates and the leader try (default 2 s). */
  retryPeriodMs?: number;
  onStartedLeading: (signal: AbortSignal) => void;
  onStoppedLeading: () => void;
  onNewLeader?: (identity: string) => void;
  onError?: (err: unknown) => void;
}

/** RFC 3339 with microseconds, the MicroTime format Lease fields require. */
export const microTime = (ms: number): string => new Date(ms).toISOString().replace(/Z$/, "000Z");

export class LeaderElector {
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private observed?: { record: string; at: number; resourceVersion?: string; lease?: LeaseObject };
  /** When the lease another candidate holds expires by this process's clock (undefined: not held by another). */
  private othersExpireAt?: number;
  private leading = false;
  private lastLeader = "";

  constructor(
    private readonly leases: Resource<LeaseObject>,
    private readonly opts: LeaderElectionOptions,
  ) {
    this.leaseDurationMs = opts.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = opts.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = opts.retryPeriodMs ?? 2_000;
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** Campaigns until elected, leads until renewal fails or `signal` aborts; then releases. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted && !(await this.tryAcquireOrRenew())) {
      // Every retryPeriod (jittered), and also the moment the holder's lease runs out, so a
      // standby takes over a dead leader's lease without waiting out a retry period on top.
      const retry = this.retryPeriodMs * (1 + Math.random() * 0.2);
      const expiry = this.othersExpireAt === undefined ? retry : this.othersExpireAt - Date.now() + 5;
      await sleep(Math.max(0, Math.min(retry, expiry)), signal);
    }
    if (signal.aborted) return;
    this.leading = true;
    const leadership = new AbortController();
    this.opts.onStartedLeading(leadership.signal);
    let lastRenew = Date.now();
    while (!signal.aborted) {
      await sleep(this.retryPeriodMs, signal);
      if (signal.aborted) break;
      if (await this.tryAcquireOrRenew()) {
        lastRenew = Date.now();
      } else if (Date.now() - lastRenew > this.renewDeadlineMs || this.lastLeader !== this.opts.identity) {
        break;
      }
    }
    this.leading = false;
    leadership.abort();
    if (signal.aborted) await this.release();
    this.opts.onStoppedLeading();
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const now = Date.now();
    const { namespace, name, identity } = this.opts;
    const desired = {
      holderIdentity: identity,
      leaseDurationSeconds: Math.ceil(this.leaseDurationMs / 1000),
      acquireTime: microTime(now),
      renewTime: microTime(now),
      leaseTransitions: 0,
    };
    let lease: LeaseObject;
    this.othersExpireAt = undefined;
    try {
      lease = await this.leases.get(namespace, name);
    } catch (err) {
      if (!isNotFound(err)) {
        this.opts.onError?.(err);
        return false;
      }
      try {
        await this.leases.create(namespace, { metadata: { name, namespace }, spec: desired });
        this.observe(identity);
        return true;
      } catch (createErr) {
        if (!isConflict(createErr)) this.opts.onError?.(createErr);
        return false;
      }
    }
    const spec = lease.spec ?? {};
    const record = JSON.stringify([spec.holderIdentity, spec.renewTime, spec.leaseTransitions]);
    if (this.observed?.record !== record) this.observed = { record, at: now };
    const holder = spec.holderIdentity ?? "";
    this.observe(holder);
    const duration = (spec.leaseDurationSeconds ?? 0) * 1000;
    const expired = !holder || this.observed.at + duration <= now;
    this.othersExpireAt = holder && holder !== identity && !expired ? this.observed.at + duration : undefined;
    if (holder !== identity && !expired) return false;
    const next = {
      ...desired,
      acquireTime: holder === identity ? (spec.acquireTime ?? desired.acquireTime) : desired.acquireTime,
      leaseTransitions: (spec.leaseTransitions ?? 0) + (holder === identity ? 0 : 1),
    };
    try {
      const updated = await this.leases.replace(namespace, { ...lease, spec: next });
      this.observed = {
        record: JSON.stringify([next.holderIdentity, updated.spec?.renewTime, next.leaseTransitions]),
        at: now,
      };
      this.observe(identity);
      return true;
    } catch (err) {
      if (!isConflict(err)) this.opts.onError?.(err);
      return false;
    }
  }

  private observe(holder: string): void {
    if (holder && holder !== this.lastLeader) {
      this.lastLeader = holder;
      this.opts.onNewLeader?.(holder);
    } else if (!holder) {
      this.lastLeader = "";
    }
  }

  /** Gives the lease up so a standby can lead at once instead of waiting for it to expire. */
  private async release(): Promise<void> {
    try {
      const lease = await this.leases.get(this.opts.namespace, this.opts.name);
      if (lease.spec?.holderIdentity !== this.opts.identity) return;
      await this.leases.replace(this.opts.namespace, {
        ...lease,
        spec: {
          ...lease.spec,
          holderIdentity: "",
          leaseDurationSeconds: 1,
          renewTime: microTime(Date.now()),
        },
      });
    } catch (err) {
      this.opts.onError?.(err);
    }
  }
}
