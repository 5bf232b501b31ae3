// The renderer (train/render.py) draws the training data and the evaluator's reference clips; its
// own unittest suite (determinism, exact colours, held-out exclusion, CLI bytes) runs here.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { it } from "node:test";

const root = join(import.meta.dirname, "..", "..");

it("passes the renderer's unittest suite", () => {
  const result = spawnSync("python3", ["-m", "unittest", "discover", "-s", "train", "-p", "test_*.py"], {
    cwd: root,
    encoding: "utf8",
  });
  assert.equal(result.status, 0, `python3 -m unittest failed:\n${result.stdout}\n${result.stderr}`);
  assert.match(result.stderr, /\nOK/);
});
