import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { queueDepth, registry } from "./index.ts";

describe("telemetry", () => {
  it("owns only framefleet_-prefixed metrics", async () => {
    const names = (await registry.getMetricsAsJSON()).map((m) => m.name);
    assert.ok(names.length > 0);
    for (const name of names) assert.match(name, /^framefleet_/);
  });

  it("exposes observed values in the Prometheus text format", async () => {
    queueDepth.set({ namespace: "ns", model: "tiny-shapes", gpu_class: "h100" }, 3);
    const text = await registry.metrics();
    assert.match(text, /framefleet_queue_depth\{namespace="ns",model="tiny-shapes",gpu_class="h100"\} 3/);
    queueDepth.reset();
  });
});
