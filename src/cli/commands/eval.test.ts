import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { EvalReport } from "../../eval/run-eval.ts";
import { REPO_ROOT } from "../../pipeline/local.ts";
import { evalTable, parseEvalArgs } from "./eval.ts";

const BIN = join(REPO_ROOT, "bin", "framefleet.js");
const bundled = join(REPO_ROOT, "models", "tiny-shapes");
const missing =
  (!existsSync(join(REPO_ROOT, "native", "build", "framefleet_native.node")) &&
    "the native build (npm run build:native) is missing") ||
  (!existsSync(join(bundled, "student.safetensors")) && "the bundled model has no student");

function framefleet(args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", timeout: 300_000 });
}

describe("framefleet eval arguments", () => {
  it("defaults to baseline and turbo, 8 prompts per split, 2 seeds, the bundled model", () => {
    assert.deepEqual(parseEvalArgs([]), {
      json: false,
      profiles: ["baseline", "turbo"],
      prompts: 8,
      seeds: 2,
      model: "tiny-shapes",
      help: false,
    });
  });

  it("takes --profile repeatedly, once per name", () => {
    const a = parseEvalArgs(["--json", "--profile", "turbo", "--profile", "fast", "--profile", "turbo"]);
    assert.deepEqual(a.profiles, ["turbo", "fast"]);
    assert.equal(a.json, true);
    const b = parseEvalArgs(["--prompts", "24", "--seeds", "4", "--model", "/m", "--sheets", "out/sheets"]);
    assert.deepEqual([b.prompts, b.seeds, b.model, b.sheets], [24, 4, "/m", "out/sheets"]);
  });

  it("rejects counts that are not positive integers and unknown options as bad requests", () => {
    for (const [args, message] of [
      [["--prompts", "0"], /--prompts: must be a positive integer \(got 0\)/],
      [["--seeds", "two"], /--seeds: must be a positive integer \(got two\)/],
      [["--frobnicate"], /Unknown option '--frobnicate'/],
      [["--profile", ""], /--profile: a profile name cannot be empty/],
    ] as const) {
      assert.throws(
        () => parseEvalArgs([...args]),
        (err: Error & { code?: string }) => {
          assert.match(err.message, message);
          assert.equal(err.code, "E_BAD_REQUEST");
          return true;
        },
      );
    }
  });

  it("prints one table row per profile and split", () => {
    const split = { overall: 0.5, colour: 1, shape: 0.75, direction: 0.5, background: 1, n: 4 };
    const report = {
      model: "tiny-shapes",
      suite: { prompts: 2, seeds: 2, width: 128, height: 128, frames: 33 },
      profiles: { turbo: { seen: split, heldOut: { ...split, n: 0, overall: 0 } } },
    } as unknown as EvalReport;
    const lines = evalTable(report).trimEnd().split("\n");
    assert.equal(lines.length, 4);
    assert.match(lines[2] ?? "", /^turbo\s+seen\s+4\s+50\.0%\s+100\.0%\s+75\.0%\s+50\.0%\s+100\.0%$/);
    assert.match(lines[3] ?? "", /^turbo\s+heldOut\s+0\s+0\.0%/);
  });
});

describe("framefleet eval on the native engine", { skip: missing }, () => {
  it("prints the accuracy report as JSON for the bundled model", () => {
    const sheets = join(mkdtempSync(join(tmpdir(), "framefleet-eval-")), "sheets");
    const r = framefleet([
      "eval",
      "--json",
      "--profile",
      "turbo",
      "--prompts",
      "1",
      "--seeds",
      "1",
      "--sheets",
      sheets,
    ]);
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout) as EvalReport;
    assert.deepEqual(Object.keys(report.profiles), ["turbo"]);
    const turbo = report.profiles.turbo;
    assert.ok(turbo);
    for (const split of ["seen", "heldOut"] as const) {
      assert.equal(turbo[split].n, 1);
      for (const key of ["overall", "colour", "shape", "direction", "background"] as const) {
        assert.ok(turbo[split][key] >= 0 && turbo[split][key] <= 1, `${split}.${key} ${turbo[split][key]}`);
      }
    }
    assert.equal(turbo.cases.length, 2);
    for (const c of turbo.cases) assert.ok(c.sheet && existsSync(c.sheet), `${c.sheet} missing`);
    assert.equal(turbo.knobs.sampler, "rcm");
    assert.match(r.stderr, /eval turbo 2\/2 (ok|miss) a /);
  });

  it("exits 2 naming the allowed profiles when one is unknown", () => {
    const r = framefleet(["eval", "--profile", "fastest", "--prompts", "1", "--seeds", "1"]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /profile: 'fastest' is not a profile of tiny-shapes \(allowed: baseline, turbo\)/);
    assert.equal(r.stdout, "");
  });
});
