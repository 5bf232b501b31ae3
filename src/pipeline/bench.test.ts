import assert from "node:assert/strict";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parseCaption } from "../eval/caption.ts";
import { isHeldOut } from "../eval/vocabulary.ts";
import { type BenchRow, benchPrompts, benchRows, median, psnr, runBench } from "./bench.ts";
import { type BenchResult, benchTable, writeBenchDocs } from "./bench-docs.ts";
import { testModel } from "./test-support.ts";

describe("bench", () => {
  it("has the decomposition rows, each technique alone, then turbo", () => {
    assert.deepEqual(
      benchRows().map((r) => r.name),
      ["baseline", "+w8a8", "+sage", "+sla", "+teacache", "+rcm", "turbo"],
    );
  });

  it("builds a prompt suite of seen and held-out combinations the grammar parses", () => {
    const suite = benchPrompts(16);
    assert.equal(suite.length, 16);
    assert.equal(new Set(suite.map((p) => p.prompt)).size, 16);
    for (const item of suite) {
      const scene = parseCaption(item.prompt);
      assert.equal(isHeldOut(scene), item.heldOut, item.prompt);
    }
    assert.equal(suite.filter((p) => p.heldOut).length, 8);
    assert.deepEqual(benchPrompts(4), suite.slice(0, 4), "the quick suite is the start of the full one");
  });

  it("computes PSNR and medians", () => {
    const a = new Uint8Array([0, 0, 0, 0]);
    assert.equal(psnr(a, a), 100);
    assert.equal(psnr(a, new Uint8Array([255, 255, 255, 255])), 0);
    assert.ok(Math.abs(psnr(a, new Uint8Array([10, 10, 10, 10])) - 20 * Math.log10(25.5)) < 1e-9);
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 2, 3]), 2.5);
  });

  it("measures every row against the baseline of the same run", async () => {
    const model = await testModel();
    const reported: BenchRow[] = [];
    const order: string[] = [];
    const totals = new Set<number>();
    const rows = await runBench(model, {
      onRow: (row) => reported.push(row),
      onRun: (row, index, total) => {
        order.push(`${row}#${index}`);
        totals.add(total);
      },
      shortRunTimings: 2,
      prompts: [
        { prompt: "a white square moving right on a black background", seed: 1, heldOut: false },
        { prompt: "a red circle moving left on a black background", seed: 2, heldOut: false },
      ],
      rows: benchRows({ slaTopK: 0.5 }).filter((r) => ["baseline", "+sla", "turbo"].includes(r.name)),
      video: { width: 32, height: 32, frames: 9, fps: 8 },
    });
    assert.deepEqual(
      rows.map((r) => [r.profile, r.nfe, r.runs, r.knobs.attention, r.knobs.slaTopK]),
      [
        ["baseline", 12, 4, "dense", undefined],
        ["+sla", 12, 4, "sla", 0.5],
        ["turbo", 2, 4, "sla", 0.5],
      ],
      "every run is short, so each prompt times each row twice",
    );
    assert.deepEqual(
      order.map((o) => o.split("#")[0]),
      [1, 2].flatMap(() => ["baseline", "baseline", "+sla", "+sla", "turbo", "turbo"]),
      "each prompt runs through every row before the next prompt",
    );
    assert.deepEqual(
      order.map((o) => Number(o.split("#")[1])),
      Array.from({ length: 12 }, (_, i) => i + 1),
    );
    assert.equal(Math.max(...totals), 12, "the progress total grows to the runs made");
    assert.deepEqual(reported, rows, "each row is reported, baseline first");
    const [baseline, sla, turbo] = rows;
    assert.equal(baseline?.speedup, 1);
    assert.equal(baseline?.psnrVsBaseline, null);
    assert.equal(sla?.psnrVsBaseline, 100, "the test engine draws the same clip for every knob");
    assert.ok(Math.abs((turbo?.denoiseSpeedup ?? 0) - 3) < 1e-9, "6 steps of 10 ms against 2");
    assert.ok(turbo && baseline && Math.abs(turbo.speedup - baseline.seconds / turbo.seconds) < 1e-12);
    // The test engine always draws a white square moving right: one prompt of two matches.
    assert.deepEqual(
      rows.map((r) => r.promptAccuracy),
      [0.5, 0.5, 0.5],
    );
  });
});

describe("bench docs", () => {
  const row = (profile: string, seconds: number): BenchRow => ({
    profile,
    description: "",
    knobs: {
      weights: "dit",
      sampler: "euler",
      steps: 50,
      guidanceScale: 5,
      attention: "dense",
      linear: "fp32",
      teaCache: 0,
    },
    nfe: 100,
    seconds,
    speedup: 10 / seconds,
    denoiseSeconds: seconds - 1,
    denoiseSpeedup: 9 / (seconds - 1),
    psnrVsBaseline: profile === "baseline" ? null : 31.25,
    promptAccuracy: 0.9375,
    runs: 4,
  });
  const result = (rows: BenchRow[]): BenchResult => ({
    machine: { cpu: "Test CPU", cores: 2, cpuFeatures: ["avx2"], gpu: null },
    model: { name: "tiny-shapes", dir: "models/tiny-shapes" },
    command: "framefleet bench --quick --write-docs",
    date: "2026-01-01",
    suite: { prompts: 4, heldOut: 2, repeats: 1, quick: true },
    video: { width: 128, height: 128, frames: 33, fps: 16 },
    load: { before: [0.5, 1, 1.25], after: [2, 1.5, 1.25] },
    threads: 2,
    rows,
  });

  it("renders one table row per bench row with both speedups", () => {
    const table = benchTable([row("baseline", 10), row("turbo", 2)]).split("\n");
    assert.equal(table.length, 4);
    assert.equal(
      table[2],
      "| baseline | dit, euler 50, cfg 5, dense, fp32 | 100 | 10.000 | 1.0x | 9.000 | 1.0x | — | 93.8% |",
    );
    assert.equal(
      table[3],
      "| turbo | dit, euler 50, cfg 5, dense, fp32 | 100 | 2.000 | 5.0x | 1.000 | 9.0x | 31.3 | 93.8% |",
    );
  });

  it("appends its section once and replaces it on the next run, keeping other sections", async () => {
    const file = join(await mkdtemp(join(tmpdir(), "framefleet-docs-")), "BENCHMARKS.md");
    await writeFile(file, "# Benchmarks\n\n## Kernels\n\nkernel table\n");
    await writeBenchDocs(file, result([row("baseline", 10)]));
    await writeBenchDocs(file, result([row("baseline", 10), row("turbo", 2)]));
    const text = await readFile(file, "utf8");
    assert.ok(text.startsWith("# Benchmarks\n\n## Kernels\n\nkernel table\n\n<!-- framefleet bench: begin"));
    assert.equal(text.split("## Whole pipeline").length, 2, "one section");
    assert.match(text, /Command: `framefleet bench --quick --write-docs`/);
    assert.match(text, /Machine: Test CPU, 2 cores, CPU features avx2; GPU: none \(CPU path\)/);
    assert.match(text, /\| turbo \|.*\| 5\.0x \|/);
    assert.match(
      text,
      /Load average \(1, 5, 15 min\): 0\.50 \/ 1\.00 \/ 1\.25 at the start, 2\.00 \/ 1\.50 \/ 1\.25 at the end; 2 engine threads\./,
    );
  });
});
