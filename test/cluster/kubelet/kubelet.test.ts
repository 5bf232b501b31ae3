// Pure pieces of the process kubelet: node specs, GFD labels, mount rewriting, env expansion,
// downward-API fields and image resolution.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { expandVars, parseQuantity, podField, resourceField } from "./env.ts";
import { NoEntrypointError, resolveCommand } from "./images.ts";
import { nodeLabels, parseNodeSpec } from "./nodes.ts";
import { GpuAllocator } from "./pod-worker.ts";
import type { Pod } from "./types.ts";
import { mountRewriter } from "./volumes.ts";

const scratch = mkdtempSync(join(tmpdir(), "framefleet-kubelet-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

const pod: Pod = {
  metadata: { name: "w-0", namespace: "ns1", uid: "u-1", labels: { app: "worker", tier: "gpu" } },
  spec: {
    nodeName: "ff-h100-1",
    serviceAccountName: "worker",
    containers: [
      { name: "main", resources: { limits: { cpu: "1500m", memory: "2Gi" }, requests: { cpu: "500m" } } },
    ],
  },
};

describe("node specs", () => {
  it("expands class counts into named nodes with default and explicit GPU counts", () => {
    const nodes = parseNodeSpec("h100=2,rtx5090=1:4,cpu=1");
    assert.deepEqual(
      nodes.map((n) => [n.name, n.gpus]),
      [
        ["ff-h100-0", 8],
        ["ff-h100-1", 8],
        ["ff-rtx5090-0", 4],
        ["ff-cpu-0", 0],
      ],
    );
  });

  it("rejects unknown classes and malformed parts with the allowed forms", () => {
    assert.throws(() => parseNodeSpec("a100=1"), /unknown node class "a100".*h100, rtx5090, cpu/);
    assert.throws(() => parseNodeSpec("h100"), /class=count/);
    assert.throws(() => parseNodeSpec(""), /at least one node/);
  });

  it("labels GPU nodes as GPU Feature Discovery does and CPU nodes without GPU labels", () => {
    const [h100, cpu] = parseNodeSpec("h100=1,cpu=1");
    const labels = nodeLabels(h100 as never);
    assert.equal(labels["nvidia.com/gpu.product"], "NVIDIA-H100-80GB-HBM3");
    assert.equal(labels["nvidia.com/gpu.family"], "hopper");
    assert.equal(labels["nvidia.com/gpu.compute.major"], "9");
    assert.equal(labels["nvidia.com/gpu.count"], "8");
    assert.equal(nodeLabels(cpu as never)["nvidia.com/gpu.present"], undefined);
  });
});

describe("mount rewriting", () => {
  const volumes = new Map([
    ["out", "/local/out"],
    ["models", "/local/models"],
  ]);
  const { mounts, rewrite } = mountRewriter(
    {
      name: "main",
      volumeMounts: [
        { name: "out", mountPath: "/data" },
        { name: "models", mountPath: "/data/models" },
      ],
    },
    volumes,
  );

  it("rewrites paths under a mount, longest mount first, in plain and --flag= form", () => {
    assert.equal(rewrite("/data/models/tiny"), "/local/models/tiny");
    assert.equal(rewrite("/data/x.mp4"), "/local/out/x.mp4");
    assert.equal(rewrite("--out=/data"), "--out=/local/out");
    assert.equal(rewrite("a:/data/models"), "a:/local/models");
  });

  it("leaves look-alike paths alone", () => {
    assert.equal(rewrite("/database"), "/database");
    assert.equal(rewrite("x/data/y"), "x/data/y");
  });

  it("exposes the mount map", () => {
    assert.deepEqual(mounts, { "/data": "/local/out", "/data/models": "/local/models" });
  });

  it("creates subPath folders and refuses mounts of unknown volumes", () => {
    const { mounts: sub } = mountRewriter(
      { name: "c", volumeMounts: [{ name: "v", mountPath: "/m", subPath: "a/b" }] },
      new Map([["v", scratch]]),
    );
    assert.equal(sub["/m"], join(scratch, "a/b"));
    assert.throws(
      () => mountRewriter({ name: "c", volumeMounts: [{ name: "nope", mountPath: "/m" }] }, new Map()),
      /names no volume/,
    );
  });
});

describe("environment", () => {
  it("expands $(VAR), keeps unknown references and unescapes $$", () => {
    assert.equal(expandVars("$(A)-$(B)-$$(A)", { A: "1" }), "1-$(B)-$(A)");
  });

  it("resolves downward-API fields", () => {
    assert.equal(podField(pod, "metadata.name"), "w-0");
    assert.equal(podField(pod, "metadata.labels['tier']"), "gpu");
    assert.equal(podField(pod, "metadata.labels"), 'app="worker"\ntier="gpu"');
    assert.equal(podField(pod, "spec.nodeName"), "ff-h100-1");
    assert.equal(podField(pod, "status.podIP"), "127.0.0.1");
    assert.throws(() => podField(pod, "spec.bogus"), /unsupported downward API field/);
  });

  it("resolves resource fields with divisors, rounding up", () => {
    const c = pod.spec.containers[0] as Pod["spec"]["containers"][0];
    assert.equal(resourceField(pod, c, { resource: "limits.cpu" }), "2");
    assert.equal(resourceField(pod, c, { resource: "limits.cpu", divisor: "1m" }), "1500");
    assert.equal(resourceField(pod, c, { resource: "limits.memory", divisor: "1Mi" }), "2048");
    assert.equal(parseQuantity("1Gi"), 1024 ** 3);
  });
});

describe("images", () => {
  const images = [
    { match: "framefleet", entrypoint: ["/usr/bin/node", "/repo/bin/framefleet.js"], workingDir: "/repo" },
  ];

  it("runs a given command with args appended and $(VAR) expanded", () => {
    const r = resolveCommand(
      { name: "c", image: "any", command: ["echo", "$(X)"], args: ["b"] },
      images,
      { X: "a" },
      "images.yaml",
    );
    assert.deepEqual(r.argv, ["echo", "a", "b"]);
  });

  it("maps an args-only framefleet image to the checkout's CLI", () => {
    const r = resolveCommand(
      { name: "c", image: "ghcr.io/x/framefleet:1.0", args: ["worker"] },
      images,
      {},
      "images.yaml",
    );
    assert.deepEqual(r.argv, ["/usr/bin/node", "/repo/bin/framefleet.js", "worker"]);
    assert.equal(r.workingDir, "/repo");
  });

  it("fails an unmapped image without command with the reason and the config file", () => {
    assert.throws(
      () => resolveCommand({ name: "c", image: "busybox", args: ["true"] }, images, {}, "images.yaml"),
      (err: unknown) => err instanceof NoEntrypointError && /busybox.*images\.yaml/.test(err.message),
    );
  });
});

describe("GPU allocation", () => {
  it("hands out distinct indices per node and refuses over-allocation", () => {
    const gpus = new GpuAllocator(new Map([["n", 2]]));
    assert.deepEqual(gpus.allocate("n", 1), [0]);
    assert.deepEqual(gpus.allocate("n", 1), [1]);
    assert.throws(() => gpus.allocate("n", 1), /0 free nvidia.com\/gpu/);
    gpus.release("n", [0]);
    assert.deepEqual(gpus.allocate("n", 1), [0]);
  });
});
