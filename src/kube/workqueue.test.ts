import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ControllerRateLimiter, WorkQueue } from "./workqueue.ts";

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = () => {};
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

describe("ControllerRateLimiter", () => {
  it("backs a failing key off from 5 ms doubling, capped at 1000 s", () => {
    const now = 0;
    const limiter = new ControllerRateLimiter({ now: () => now, burst: 1e9 });
    const delays = Array.from({ length: 5 }, () => limiter.when("a"));
    assert.deepEqual(delays, [5, 10, 20, 40, 80]);
    for (let i = 0; i < 40; i++) limiter.when("a");
    assert.equal(limiter.when("a"), 1_000_000);
    assert.equal(limiter.when("b"), 5, "keys back off independently");
    limiter.forget("a");
    assert.equal(limiter.when("a"), 5, "forget resets the key");
  });

  it("throttles retries over all keys to 10 per second after a burst of 100", () => {
    let now = 0;
    const limiter = new ControllerRateLimiter({ now: () => now });
    for (let i = 0; i < 100; i++) assert.equal(limiter.when(`k${i}`), 5);
    assert.equal(limiter.when("k100"), 100, "the 101st retry waits one token (100 ms)");
    assert.equal(limiter.when("k101"), 200);
    now += 1000;
    assert.equal(limiter.when("k102"), 5, "a second refills 10 tokens");
  });
});

describe("WorkQueue", () => {
  it("never hands one key to two workers at once and re-queues a key added while processing", async () => {
    const q = new WorkQueue({ name: "t" });
    let running = 0;
    let maxRunning = 0;
    let calls = 0;
    const gate = deferred();
    const done = deferred();
    const run = q.run(4, async () => {
      running++;
      calls++;
      maxRunning = Math.max(maxRunning, running);
      if (calls === 1) await gate.promise;
      running--;
      if (calls === 2) done.resolve();
      return undefined;
    });
    q.add("ns/a");
    await new Promise((r) => setImmediate(r));
    q.add("ns/a");
    q.add("ns/a");
    await new Promise((r) => setImmediate(r));
    assert.equal(calls, 1, "the second add waits while the key is processing");
    gate.resolve();
    await done.promise;
    q.shutDown();
    await run;
    assert.equal(maxRunning, 1);
    assert.equal(calls, 2, "adds while processing collapse into one more reconcile");
  });

  it("retries a failing reconcile with growing delays and forgets the key on success", async () => {
    const q = new WorkQueue({ name: "t", baseDelayMs: 1 });
    const seen: number[] = [];
    const errors: number[] = [];
    const finished = deferred();
    q.opts.onError = (_key, _err, retries) => errors.push(retries);
    const run = q.run(1, async () => {
      seen.push(Date.now());
      if (seen.length < 4) throw new Error("transient");
      finished.resolve();
      return undefined;
    });
    q.add("x");
    await finished.promise;
    q.shutDown();
    await run;
    assert.deepEqual(errors, [0, 1, 2]);
    assert.equal(q.limiter.numRequeues("x"), 0);
  });

  it("keeps the earliest of several delayed adds of one key", async () => {
    const q = new WorkQueue({ name: "t" });
    q.addAfter("k", 10_000);
    q.addAfter("k", 5);
    q.addAfter("k", 20_000);
    const key = await q.get();
    assert.equal(key, "k");
    q.done("k");
    assert.equal(q.pending, 0, "the later adds were dropped");
    q.shutDown();
  });
});
