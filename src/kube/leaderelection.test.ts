// The Lease protocol against an in-memory Lease store that enforces resourceVersion like the API
// server: when a standby takes over, that the lease is respected until it expires, and that two
// candidates never lead at once.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ApiError } from "./client.ts";
import { LeaderElector, type LeaseObject, microTime } from "./leaderelection.ts";
import type { Resource } from "./resource.ts";

function leaseStore() {
  let stored: LeaseObject | undefined;
  let version = 0;
  const copy = (l: LeaseObject): LeaseObject => JSON.parse(JSON.stringify(l));
  const store = {
    async get(): Promise<LeaseObject> {
      if (!stored) throw new ApiError(404, "NotFound", "lease not found", "GET", "");
      return copy(stored);
    },
    async create(_ns: string | undefined, obj: LeaseObject): Promise<LeaseObject> {
      if (stored) throw new ApiError(409, "AlreadyExists", "lease exists", "POST", "");
      stored = { ...copy(obj), metadata: { ...obj.metadata, resourceVersion: String(++version) } };
      return copy(stored);
    },
    async replace(_ns: string | undefined, obj: LeaseObject): Promise<LeaseObject> {
      if (!stored || obj.metadata.resourceVersion !== stored.metadata.resourceVersion)
        throw new ApiError(409, "Conflict", "stale resourceVersion", "PUT", "");
      stored = { ...copy(obj), metadata: { ...obj.metadata, resourceVersion: String(++version) } };
      return copy(stored);
    },
  };
  return { leases: store as unknown as Resource<LeaseObject>, holder: () => stored?.spec?.holderIdentity };
}

function candidate(
  leases: Resource<LeaseObject>,
  identity: string,
  timing: { leaseDurationMs: number; retryPeriodMs: number },
) {
  const state = { leading: false, startedAt: 0 };
  const elector = new LeaderElector(leases, {
    namespace: "ns",
    name: "lock",
    identity,
    renewDeadlineMs: timing.leaseDurationMs * 0.7,
    ...timing,
    onStartedLeading: () => {
      state.leading = true;
      state.startedAt = Date.now();
    },
    onStoppedLeading: () => {
      state.leading = false;
    },
  });
  return { elector, state };
}

describe("LeaderElector", () => {
  it("takes over a lease its holder stopped renewing as soon as it expires, not a retry period later", async () => {
    const { leases, holder } = leaseStore();
    // A leader that died right after renewing: the record never changes again.
    await leases.create("ns", {
      metadata: { name: "lock", namespace: "ns" },
      spec: { holderIdentity: "dead", leaseDurationSeconds: 1, renewTime: microTime(Date.now()) },
    });
    const { elector, state } = candidate(leases, "standby", { leaseDurationMs: 1000, retryPeriodMs: 4000 });
    const stop = new AbortController();
    const t0 = Date.now();
    const running = elector.run(stop.signal);
    try {
      await new Promise((r) => setTimeout(r, 900));
      assert.equal(state.leading, false, "the holder's lease is respected until it expires");
      assert.equal(holder(), "dead");
      while (!state.leading && Date.now() - t0 < 3500) await new Promise((r) => setTimeout(r, 20));
      assert.equal(state.leading, true, "the standby leads once the lease expired");
      assert.equal(holder(), "standby");
      // The retry period is 4 s: taking over within 2 s means it did not wait for the next retry.
      const after = state.startedAt - t0;
      assert.ok(after >= 1000 && after < 2000, `took over ${after} ms after first seeing the lease`);
    } finally {
      stop.abort();
      await running;
    }
    assert.equal(holder(), "", "released on shutdown");
  });

  it("never lets two candidates lead at once, and hands over when the leader shuts down", async () => {
    const { leases, holder } = leaseStore();
    const timing = { leaseDurationMs: 800, retryPeriodMs: 100 };
    const a = candidate(leases, "a", timing);
    const b = candidate(leases, "b", timing);
    const stopA = new AbortController();
    const stopB = new AbortController();
    const runs = [a.elector.run(stopA.signal), b.elector.run(stopB.signal)];
    let both = 0;
    const watch = setInterval(() => {
      if (a.state.leading && b.state.leading) both++;
    }, 10);
    try {
      await new Promise((r) => setTimeout(r, 1000));
      const first = a.state.leading ? a : b;
      const second = first === a ? b : a;
      assert.ok(first.state.leading && !second.state.leading, "exactly one leads");
      assert.equal(holder(), first === a ? "a" : "b");
      (first === a ? stopA : stopB).abort();
      await new Promise((r) => setTimeout(r, 400));
      assert.ok(
        second.state.leading,
        "the other leads after the release, well before the lease would expire",
      );
      assert.equal(both, 0, "never two leaders");
    } finally {
      clearInterval(watch);
      stopA.abort();
      stopB.abort();
      await Promise.all(runs);
    }
  });
});
