// The acceleration decomposition (in the manner of TurboDiffusion's table): the whole pipeline
// from text to a written MP4, per row of knobs, on one loaded model, against the baseline measured
// in the same run. Each row also carries the denoising stage alone (what TurboDiffusion reports),
// PSNR of its frames against the baseline's from the same seed, and prompt accuracy judged by the
// analyzer of src/eval.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Knobs } from "../api/knobs.ts";
import { analyzeClip } from "../eval/analyzer.ts";
import { parseCaption } from "../eval/caption.ts";
import { judge } from "../eval/scoring.ts";
import { buildSuite } from "../eval/suite.ts";
import type { Frames } from "./contact-sheet.ts";
import type { Report } from "./report.ts";
import { type PipelineModel, type PipelineSpec, runPipeline } from "./run.ts";

export interface BenchRowDefinition {
  /** Row label, e.g. `+w8a8`. */
  name: string;
  /** What the row changes, for the docs. */
  description: string;
  profile: string;
  acceleration?: Knobs;
  steps?: number;
}

/** TeaCache threshold of the `+teacache` row when the caller names none. */
export const DEFAULT_TEACACHE_THRESHOLD = 0.1;

/**
 * The rows: the baseline, each technique alone on top of it, and turbo with all that compose.
 * sla's top-k fraction is turbo's, so the `+sla` row isolates the kernel the turbo row runs.
 */
export function benchRows(options: { teaCache?: number; slaTopK?: number } = {}): BenchRowDefinition[] {
  const slaTopK = options.slaTopK;
  return [
    {
      name: "baseline",
      description: "the teacher with Euler and CFG, dense fp32 (the profile's steps)",
      profile: "baseline",
    },
    {
      name: "+w8a8",
      description: "INT8 weights and activations in the blocks' linear layers",
      profile: "baseline",
      acceleration: { linear: "w8a8" },
    },
    {
      name: "+sage",
      description: "INT8 Q.K^T attention with per-block scales",
      profile: "baseline",
      acceleration: { attention: "sage" },
    },
    {
      name: "+sla",
      description: "sparse-linear attention on sage",
      profile: "baseline",
      acceleration: { attention: "sla", ...(slaTopK !== undefined ? { slaTopK } : {}) },
    },
    {
      name: "+teacache",
      description: "the baseline, skipping block stacks by TeaCache",
      profile: "baseline",
      acceleration: { teaCache: options.teaCache ?? DEFAULT_TEACACHE_THRESHOLD },
    },
    {
      name: "+rcm",
      description: "the distilled student, rcm sampler, 4 steps, no CFG",
      profile: "baseline",
      acceleration: { weights: "student", sampler: "rcm" },
      steps: 4,
    },
    { name: "turbo", description: "the turbo profile: every technique that composes", profile: "turbo" },
  ];
}

export interface BenchPrompt {
  prompt: string;
  seed: number;
  heldOut: boolean;
}

/**
 * The prompts each row generates: the evaluation suite of src/eval (balanced over the vocabulary),
 * seen and held-out prompts alternately, seeds 1..n. `count` 4 is the quick suite, 16 the full
 * one; a smaller suite is the start of a larger one.
 */
export function benchPrompts(count: number): BenchPrompt[] {
  const suite = buildSuite({ prompts: Math.max(1, Math.ceil(count / 2)), seeds: 1 });
  const bySplit = {
    seen: suite.filter((c) => c.split === "seen"),
    heldOut: suite.filter((c) => c.split === "heldOut"),
  };
  const out: BenchPrompt[] = [];
  for (let i = 0; i < count; i++) {
    const heldOut = i % 2 === 1;
    const item = (heldOut ? bySplit.heldOut : bySplit.seen)[Math.floor(i / 2)];
    if (item) out.push({ prompt: item.prompt, seed: i + 1, heldOut });
  }
  return out;
}

/** PSNR in dB of two uint8 clips of the same size; identical clips give 100 (the cap). */
export function psnr(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) throw new RangeError(`PSNR of clips of ${a.length} and ${b.length} bytes`);
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = (a[i] as number) - (b[i] as number);
    sum += d * d;
  }
  if (sum === 0) return 100;
  return Math.min(100, 10 * Math.log10((255 * 255) / (sum / a.length)));
}

/** Whether the analyzer reads the prompt's colour, shape and direction in the clip (src/eval's verdict). */
export function matchesPrompt(prompt: string, frames: Frames): boolean {
  const analysis = analyzeClip({
    data: frames.data,
    width: frames.width,
    height: frames.height,
    frameCount: frames.frameCount,
  });
  return judge(analysis, parseCaption(prompt)).overall;
}

export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((x, y) => x - y);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export interface BenchRow {
  profile: string;
  description: string;
  knobs: Report["knobs"];
  nfe: number;
  /** Median seconds of the whole pipeline, text to written video (report timings.total). */
  seconds: number;
  /** Baseline seconds over this row's, same run. */
  speedup: number;
  /** Median seconds of the denoising stage alone. */
  denoiseSeconds: number;
  denoiseSpeedup: number;
  /** Mean PSNR (dB) of the row's clips against the baseline's from the same prompt and seed; null for the baseline. */
  psnrVsBaseline: number | null;
  /** Fraction of clips whose colour, shape and direction the analyzer reads as prompted. */
  promptAccuracy: number;
  runs: number;
}

/** A run of a row shorter than this many seconds is timed again (see BenchOptions.shortRunTimings). */
export const SHORT_RUN_SECONDS = 2;
/** Timings per prompt of a row whose runs are short. */
export const SHORT_RUN_TIMINGS = 3;

export interface BenchOptions {
  prompts: BenchPrompt[];
  rows: BenchRowDefinition[];
  /** Runs per prompt (default 1); seconds are medians over all runs of a row. */
  repeats?: number;
  /**
   * Timings per prompt of a row whose first run took under `shortRunSeconds` (defaults
   * SHORT_RUN_TIMINGS and SHORT_RUN_SECONDS): a fraction of a second is at the mercy of a single
   * scheduling hiccup, so fast rows take their median over more runs at little cost.
   */
  shortRunTimings?: number;
  shortRunSeconds?: number;
  video?: PipelineSpec["video"];
  signal?: AbortSignal;
  /** Called after each run, e.g. to show progress; `total` grows when short runs are repeated. */
  onRun?: (row: string, index: number, total: number, report: Report) => void;
  /** Called for each row, baseline first, once every prompt has run it. */
  onRow?: (row: BenchRow) => void;
  /** Directory for the videos (default: a temporary one, removed at the end). */
  outDir?: string;
}

function rowSpec(def: BenchRowDefinition, item: BenchPrompt, video: PipelineSpec["video"]): PipelineSpec {
  return {
    prompt: item.prompt,
    seed: item.seed,
    profile: def.profile,
    video,
    output: { format: "mp4" },
    ...(def.acceleration ? { acceleration: def.acceleration } : {}),
    ...(def.steps !== undefined ? { sampling: { steps: def.steps } } : {}),
  };
}

/**
 * Runs every row over every prompt and returns the table, baseline first. The rows are
 * interleaved: each prompt runs through all rows before the next prompt starts, so a slow spell of
 * the machine (minutes long, while the baseline's runs take most of the time) falls on every row
 * alike instead of on whichever row ran then.
 */
export async function runBench(model: PipelineModel, options: BenchOptions): Promise<BenchRow[]> {
  const outDir = options.outDir ?? (await mkdtemp(join(tmpdir(), "framefleet-bench-")));
  const repeats = options.repeats ?? 1;
  const shortTimings = options.shortRunTimings ?? SHORT_RUN_TIMINGS;
  const shortSeconds = options.shortRunSeconds ?? SHORT_RUN_SECONDS;
  const video = options.video ?? { width: 128, height: 128, frames: 33, fps: 16 };
  const baselineFrames = new Map<number, Uint8Array>();
  try {
    // One single-step untimed run per row, so page faults of mapped weights, weight
    // quantization and thread start-up land in no row's timings.
    const first = options.prompts[0] ?? { prompt: "", seed: 0, heldOut: false };
    for (const def of options.rows) {
      await runPipeline(
        model,
        { ...rowSpec(def, first, video), sampling: { steps: 1 } },
        { outDir, name: "warmup", signal: options.signal },
      );
    }
    const acc = options.rows.map(() => ({
      seconds: [] as number[],
      denoise: [] as number[],
      psnrs: [] as number[],
      correct: 0,
      report: undefined as Report | undefined,
    }));
    let total = options.rows.length * options.prompts.length * repeats;
    let index = 0;
    for (const [p, item] of options.prompts.entries()) {
      for (const [ri, def] of options.rows.entries()) {
        const row = acc[ri] as (typeof acc)[number];
        let runs = repeats;
        for (let r = 0; r < runs; r++) {
          let frames: Frames | undefined;
          const report = await runPipeline(model, rowSpec(def, item, video), {
            outDir,
            name: `${def.name.replace(/\W/g, "")}-${p}`,
            signal: options.signal,
            onFrames: (f) => (frames = f),
          });
          row.report = report;
          row.seconds.push(report.timings.total);
          row.denoise.push(report.timings.denoise);
          if (r === 0 && report.timings.total < shortSeconds && runs < shortTimings) {
            total += shortTimings - runs;
            runs = shortTimings;
          }
          options.onRun?.(def.name, ++index, total, report);
          if (r > 0 || !frames) continue;
          const clip: Frames = frames;
          if (ri === 0) baselineFrames.set(p, clip.data.slice());
          else {
            const base = baselineFrames.get(p);
            if (base) row.psnrs.push(psnr(base, clip.data));
          }
          if (matchesPrompt(item.prompt, clip)) row.correct += 1;
        }
      }
    }
    const rows: BenchRow[] = [];
    for (const [ri, def] of options.rows.entries()) {
      const row = acc[ri] as (typeof acc)[number];
      if (!row.report) continue;
      const rowSeconds = median(row.seconds);
      const rowDenoise = median(row.denoise);
      const baseline = rows[0];
      rows.push({
        profile: def.name,
        description: def.description,
        knobs: row.report.knobs,
        nfe: row.report.nfe,
        seconds: rowSeconds,
        speedup: baseline ? baseline.seconds / rowSeconds : 1,
        denoiseSeconds: rowDenoise,
        denoiseSpeedup: baseline ? baseline.denoiseSeconds / rowDenoise : 1,
        psnrVsBaseline: baseline ? row.psnrs.reduce((x, y) => x + y, 0) / row.psnrs.length : null,
        promptAccuracy: row.correct / options.prompts.length,
        runs: row.seconds.length,
      });
      options.onRow?.(rows[rows.length - 1] as BenchRow);
    }
    return rows;
  } finally {
    if (!options.outDir) await rm(outDir, { recursive: true, force: true });
  }
}
