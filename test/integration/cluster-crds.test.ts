// The CRDs in crds/ against a real API server: they apply and become Established, every
// manifests/examples document is accepted, and every manifests/invalid document marked
// `# apiserver: reject` is rejected by OpenAPI or CEL with a message about the same field that
// `framefleet validate` names (`# expect:`). Documents marked `# apiserver: accept` are the
// operator's to judge: the API server must let them in.
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parseAllDocuments } from "yaml";
import { type CommandResult, repoRoot, useTestCluster } from "../support/cluster.ts";

const cluster = await useTestCluster(import.meta.url);
after(() => cluster.cleanup());

function yamlFiles(folder: string): string[] {
  const dir = join(repoRoot, folder);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith(".yaml") || f.endsWith(".yml"))
    .sort()
    .map((f) => join(dir, f));
}

interface InvalidCase {
  file: string;
  expect: string;
  apiserver: "reject" | "accept";
}

function invalidCase(file: string): InvalidCase {
  const text = readFileSync(file, "utf8");
  const expect = /^# expect: (.+)$/m.exec(text)?.[1]?.trim();
  const apiserver = /^# apiserver: (reject|accept)\s*$/m.exec(text)?.[1];
  if (!expect || (apiserver !== "reject" && apiserver !== "accept")) {
    throw new Error(`${file}: needs "# expect: <message>" and "# apiserver: reject|accept" header lines`);
  }
  return { file, expect, apiserver };
}

/**
 * Whether an API server message is about the same thing as `expect`. With a field path
 * (`spec.gpuClasses.0: ...`) the message must name that path (`spec.gpuClasses[0]`), or its
 * parent and its last field (a CEL rule on the parent); `apiVersion`/`kind` problems surface as
 * "no matches for kind ... in version ...". Path-less messages ("malformed YAML") need one of
 * their words.
 */
function sameIntent(expect: string, message: string): boolean {
  const text = message.toLowerCase();
  const path = /^([A-Za-z][\w.[\]]*): /.exec(expect)?.[1];
  if (!path) return expect.split(/\W+/).some((w) => w.length >= 4 && text.includes(w.toLowerCase()));
  if (path === "apiVersion") return text.includes("version");
  const segments = path.split(".");
  const render = (parts: string[]) =>
    parts
      .map((p, i) => (/^\d+$/.test(p) ? `[${p}]` : i === 0 ? p : `.${p}`))
      .join("")
      .toLowerCase();
  const last =
    segments
      .filter((p) => !/^\d+$/.test(p))
      .at(-1)
      ?.toLowerCase() ?? "";
  return (
    text.includes(render(segments)) || (text.includes(render(segments.slice(0, -1))) && text.includes(last))
  );
}

/** Runs kubectl over many files a few at a time (2 cores: start-up dominates). */
async function pool(files: string[], args: (file: string) => string[]): Promise<Map<string, CommandResult>> {
  const results = new Map<string, CommandResult>();
  const queue = [...files];
  const worker = async () => {
    for (let file = queue.shift(); file; file = queue.shift())
      results.set(file, await cluster.kubectl(args(file)));
  };
  await Promise.all([worker(), worker(), worker()]);
  return results;
}

const crdFiles = yamlFiles("crds");
const examples = yamlFiles("manifests/examples");
const invalid = yamlFiles("manifests/invalid").map(invalidCase);

describe("framefleet CRDs on a real API server", () => {
  before(async () => {
    if (crdFiles.length === 0) return;
    const applied = await cluster.kubectl([
      "apply",
      "--server-side",
      "--force-conflicts",
      ...crdFiles.flatMap((f) => ["-f", f]),
    ]);
    assert.equal(applied.code, 0, `kubectl apply crds/ failed:\n${applied.stderr}`);
    const names = crdFiles.flatMap((f) =>
      parseAllDocuments(readFileSync(f, "utf8")).map(
        (d) => (d.toJS() as { metadata: { name: string } }).metadata.name,
      ),
    );
    const established = await cluster.kubectl([
      "wait",
      "--for=condition=Established",
      "--timeout=60s",
      ...names.map((n) => `crd/${n}`),
    ]);
    assert.equal(established.code, 0, established.stderr);
  });

  it("has CRDs to apply", (t) => {
    if (crdFiles.length === 0) t.skip("crds/ is empty: run `npm run crds`");
    assert.ok(crdFiles.length > 0);
  });

  describe("manifests/examples are accepted", () => {
    let results: Map<string, CommandResult>;
    before(async () => {
      results = await pool(examples, (f) => ["apply", "--server-side", "-f", f]);
    });
    for (const file of examples) {
      it(file.slice(repoRoot.length + 1), () => {
        const r = results.get(file);
        assert.equal(r?.code, 0, `rejected:\n${r?.stderr}`);
      });
    }
  });

  describe("manifests/invalid are judged as marked", () => {
    let results: Map<string, CommandResult>;
    before(async () => {
      results = await pool(
        invalid.map((c) => c.file),
        (f) => ["create", "--dry-run=server", "-o", "name", "-f", f],
      );
    });
    for (const c of invalid) {
      const name = `${c.file.slice(repoRoot.length + 1)} (${c.apiserver}: ${c.expect})`;
      it(name, () => {
        const r = results.get(c.file);
        assert.ok(r);
        if (c.apiserver === "accept") {
          assert.equal(
            r.code,
            0,
            `the API server rejected a document only the operator should judge:\n${r.stderr}`,
          );
          return;
        }
        assert.notEqual(r.code, 0, `the API server accepted it:\n${r.stdout}`);
        assert.ok(
          sameIntent(c.expect, r.stderr),
          `rejected for another reason than "${c.expect}":\n${r.stderr}`,
        );
      });
    }
  });
});
