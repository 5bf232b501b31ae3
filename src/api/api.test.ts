import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { formatProblems, renderCrds, validateYaml } from "./index.ts";

const root = join(import.meta.dirname, "..", "..");
const yamlFiles = (dir: string) =>
  readdirSync(join(root, dir))
    .filter((f) => f.endsWith(".yaml"))
    .map((f) => join(root, dir, f));

describe("CRDs", () => {
  it("crds/ equals what `framefleet crds` renders, byte for byte", () => {
    const rendered = renderCrds();
    const onDisk = readdirSync(join(root, "crds")).filter((f) => f.endsWith(".yaml"));
    assert.deepEqual(onDisk.sort(), [...rendered.keys()].sort(), "crds/ holds exactly the rendered files");
    for (const [name, text] of rendered) {
      assert.equal(
        readFileSync(join(root, "crds", name), "utf8"),
        text,
        `crds/${name} is stale: run npm run crds`,
      );
    }
  });

  it("gives every schema property a description", () => {
    const missing: string[] = [];
    const walk = (node: unknown, path: string) => {
      if (!node || typeof node !== "object") return;
      const n = node as Record<string, unknown>;
      if (n.properties && typeof n.properties === "object") {
        for (const [key, child] of Object.entries(n.properties as Record<string, Record<string, unknown>>)) {
          const p = `${path}.${key}`;
          // The API server allows no more than `type: object` on the root metadata.
          if (!child.description && !p.endsWith(".yaml.metadata")) missing.push(p);
          walk(child, p);
        }
      }
      if (n.items) walk(n.items, `${path}[]`);
      if (n.additionalProperties && typeof n.additionalProperties === "object")
        walk(n.additionalProperties, `${path}{}`);
    };
    for (const [name, text] of renderCrds()) {
      const crd = parse(text) as { spec: { versions: { schema: { openAPIV3Schema: unknown } }[] } };
      walk(crd.spec.versions[0]?.schema.openAPIV3Schema, name);
    }
    assert.deepEqual(missing, []);
  });
});

describe("framefleet validate", () => {
  it("accepts every example in manifests/examples", () => {
    for (const file of yamlFiles("manifests/examples")) {
      const verdicts = validateYaml(readFileSync(file, "utf8"));
      assert.ok(verdicts.length > 0, `${file} has documents`);
      for (const v of verdicts) assert.deepEqual(formatProblems(v), [], `${file}: ${v.label}`);
    }
  });

  it("rejects every document in manifests/invalid with its expected message", () => {
    const files = yamlFiles("manifests/invalid");
    assert.ok(files.length >= 30, "at least 30 invalid documents");
    for (const file of files) {
      const text = readFileSync(file, "utf8");
      const expect = /^# expect: (.+)$/m.exec(text)?.[1];
      assert.ok(expect, `${file} names its expected message`);
      assert.match(text, /^# apiserver: (reject|accept)$/m, `${file} says whether the API server rejects it`);
      const lines = validateYaml(text).flatMap(formatProblems);
      assert.ok(
        lines.some((l) => l.includes(expect)),
        `${file}: expected a problem containing "${expect}", got:\n${lines.join("\n")}`,
      );
    }
  });

  it("reports every problem of a document, each with its path, prefixed by kind and name", () => {
    const lines = validateYaml(`apiVersion: framefleet.dev/v1alpha1
kind: VideoGenerationJob
metadata: {name: hello}
spec: {model: m, prompt: p, video: {frames: 32, width: 100}, priority: -1}
`).flatMap(formatProblems);
    assert.deepEqual(lines.sort(), [
      "jobs/hello: spec.priority: must be >= 0 (got -1)",
      "jobs/hello: spec.video.frames: must be 1 + 4k (got 32)",
      "jobs/hello: spec.video.width: must be a multiple of 16 (got 100)",
    ]);
  });

  it("applies the schema defaults to a valid job", () => {
    const [verdict] = validateYaml(`apiVersion: framefleet.dev/v1alpha1
kind: VideoGenerationJob
metadata: {name: d}
spec: {model: m, prompt: p}
`);
    assert.ok(verdict?.value, "the job is valid");
    const spec = (verdict.value as { spec: Record<string, unknown> }).spec;
    assert.deepEqual(spec.video, { width: 128, height: 128, frames: 33, fps: 16 });
    assert.equal(spec.profile, "turbo");
    assert.equal(spec.priority, 0);
    assert.equal(spec.backoffLimit, 3);
    assert.equal(spec.suspend, false);
  });
});
