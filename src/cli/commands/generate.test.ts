import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, readdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { REPO_ROOT } from "../../pipeline/local.ts";
import { writeTestModelDir } from "../../pipeline/test-support.ts";

const BIN = join(REPO_ROOT, "bin", "framefleet.js");

function framefleet(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("framefleet generate rejects bad input with one line and exit status 2", () => {
  let model = "";
  let out = "";
  before(async () => {
    model = await writeTestModelDir();
    out = await mkdtemp(join(tmpdir(), "framefleet-gen-"));
  });
  const prompt = ["--prompt", "a red circle moving right on a black background"];

  const cases: [string, () => string[], RegExp][] = [
    [
      "unknown prompt words, named, with the vocabulary command",
      () => ["--model", model, "--prompt", "a red dodecahedron moving sideways"],
      /^framefleet generate: prompt: words 'dodecahedron', 'sideways' not in the vocabulary of test-shapes \(`framefleet vocab --model .+` lists the 22 words it knows\)\n$/,
    ],
    [
      "a width off the 16-pixel grid",
      () => ["--model", model, ...prompt, "--width", "40"],
      /^framefleet generate: spec\.video\.width: must be a multiple of 16 \(got 40\)\n$/,
    ],
    [
      "a size over the model's limit",
      () => ["--model", model, ...prompt, "--width", "256"],
      /^framefleet generate: video\.width: must be a multiple of 16 between 16 and 128 for test-shapes \(got 256\)\n$/,
    ],
    [
      "frames off the temporal grid",
      () => ["--model", model, ...prompt, "--frames", "12"],
      /^framefleet generate: spec\.video\.frames: must be 1 \+ 4k \(got 12\)\n$/,
    ],
    [
      "a missing model",
      () => ["--model", "/nonexistent/model", ...prompt],
      /^framefleet generate: model directory \/nonexistent\/model does not exist \(pass --model DIR\)\n$/,
    ],
    [
      "a directory that is not a model",
      () => ["--model", out, ...prompt],
      /^framefleet generate: .* is not a model directory: it has no config\.json \(docs\/MODEL\.md lists a model's files\)\n$/,
    ],
    [
      "no prompt",
      () => ["--model", model],
      /^framefleet generate: a prompt is required: pass --prompt TEXT or -f JOB\.yaml\n$/,
    ],
    ["an unknown flag", () => ["--colour", "red"], /^framefleet generate: Unknown option '--colour'/],
  ];
  for (const [what, args, message] of cases) {
    it(`for ${what}`, async () => {
      const r = framefleet(["generate", "--out", out, ...args()]);
      assert.equal(r.stderr.split("\n").filter(Boolean).length, 1, r.stderr);
      assert.match(r.stderr, message);
      assert.equal(r.status, 2);
      assert.equal(r.stdout, "");
      assert.deepEqual(await readdir(out), []);
    });
  }

  it("for an invalid job manifest, naming the file and the field", async () => {
    const file = join(out, "..", `bad-job-${process.pid}.yaml`);
    await writeFile(
      file,
      "apiVersion: framefleet.dev/v1alpha1\nkind: VideoGenerationJob\nmetadata: {name: bad}\nspec:\n  model: tiny-shapes\n  prompt: a red circle\n  video: {width: 128, height: 128, frames: 32}\n",
    );
    const r = framefleet(["generate", "-f", file, "--model", model, "--out", out]);
    assert.equal(r.status, 2);
    assert.match(
      r.stderr,
      /^framefleet generate: .*bad-job-\d+\.yaml: jobs\/bad: spec\.video\.frames: must be 1 \+ 4k \(got 32\)\n$/,
    );
  });
});

describe("framefleet vocab", () => {
  it("lists the words a prompt may use", async () => {
    const r = framefleet(["vocab", "--model", await writeTestModelDir(), "--json"]);
    assert.equal(r.status, 0, r.stderr);
    const parsed = JSON.parse(r.stdout);
    assert.equal(parsed.model, "test-shapes");
    assert.equal(parsed.maxWords, 15);
    assert.deepEqual(parsed.words.slice(0, 3), ["a", "moving", "on"]);
  });
});
