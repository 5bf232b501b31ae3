import { cpus, loadavg } from "node:os";
import { join, relative } from "node:path";
import { parseArgs } from "node:util";
import { benchPrompts, benchRows, runBench } from "../../pipeline/bench.ts";
import { type BenchResult, benchTable, type Machine, writeBenchDocs } from "../../pipeline/bench-docs.ts";
import { PipelineError } from "../../pipeline/errors.ts";
import {
  engineCapabilities,
  gpuDescription,
  loadLocalModel,
  REPO_ROOT,
  resolveModelDir,
  runCancellable,
} from "../../pipeline/local.ts";
import type { Command } from "../main.ts";

const usage = `usage: framefleet bench [--quick] [--json] [--write-docs] [options]

The acceleration decomposition on the bundled model, whole pipeline from text to MP4: baseline,
+w8a8, +sage, +sla, +teacache (teacher, 50 steps), +rcm (student, 4 steps) and turbo. Seconds are
medians over the suite's runs; speedups are against the baseline of the same run.
  --quick            the small prompt suite (4 prompts) instead of the full one (16)
  --json             print {machine, model, rows: [...]} as JSON on stdout
  --write-docs       write the table into docs/BENCHMARKS.md (or --docs FILE)
  --model NAME|DIR   model (default tiny-shapes)
  --prompts N        suite size (overrides --quick)
  --repeats N        runs per prompt and row (default 1; a row whose run takes under 2 s is
                     timed at least 3 times per prompt); the rows run interleaved, prompt by prompt
  --rows LIST        comma-separated subset of rows, e.g. baseline,turbo (baseline is always run)
  --teacache T       threshold of the +teacache row (default 0.1)
Progress goes to stderr.`;

/** The machine as the engine sees it: its CPU, the SIMD features it dispatches on, the GPU it would use. */
export function describeMachine(): Machine {
  const caps = engineCapabilities();
  return {
    cpu: caps.cpu.brand || (cpus()[0]?.model.trim() ?? "unknown CPU"),
    cores: cpus().length,
    cpuFeatures: caps.cpu.features,
    gpu: caps.cuda.device ? gpuDescription(caps.cuda.device) : null,
  };
}

/** Paths inside the checkout relative to it (docs stay the same on every machine), others as they are. */
function displayPath(path: string): string {
  const rel = relative(REPO_ROOT, path);
  return rel.startsWith("..") || rel === "" ? path : rel;
}

function positiveInt(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1)
    throw new PipelineError("E_BAD_REQUEST", `${flag}: must be a positive integer (got ${text})`);
  return n;
}

export const command: Command = {
  summary: "measure the acceleration decomposition, text to MP4 (--json, --quick, --write-docs)",
  async run(args) {
    let values: {
      quick?: boolean;
      json?: boolean;
      "write-docs"?: boolean;
      docs?: string;
      model?: string;
      prompts?: string;
      repeats?: string;
      rows?: string;
      teacache?: string;
      help?: boolean;
    };
    try {
      ({ values } = parseArgs({
        args,
        options: {
          quick: { type: "boolean" },
          json: { type: "boolean" },
          "write-docs": { type: "boolean" },
          docs: { type: "string" },
          model: { type: "string" },
          prompts: { type: "string" },
          repeats: { type: "string" },
          rows: { type: "string" },
          teacache: { type: "string" },
          help: { type: "boolean", short: "h" },
        },
      }));
    } catch (err) {
      process.stderr.write(`framefleet bench: ${(err as Error).message}\n`);
      return 2;
    }
    if (values.help) {
      process.stdout.write(`${usage}\n`);
      return 0;
    }
    return runCancellable("bench", async (signal) => {
      const count = positiveInt(values.prompts, "--prompts") ?? (values.quick ? 4 : 16);
      const repeats = positiveInt(values.repeats, "--repeats") ?? 1;
      const teaCache = values.teacache === undefined ? undefined : Number(values.teacache);
      if (teaCache !== undefined && !(teaCache > 0 && teaCache <= 1)) {
        throw new PipelineError("E_BAD_REQUEST", `--teacache: must be in (0, 1] (got ${values.teacache})`);
      }
      const model = await loadLocalModel(resolveModelDir(values.model ?? "tiny-shapes"));
      const all = benchRows({ teaCache, slaTopK: model.info.config.profiles.turbo?.slaTopK });
      const wanted = values.rows?.split(",").map((r) => r.trim());
      const unknown = wanted?.filter((w) => !all.some((r) => r.name === w)) ?? [];
      if (unknown.length > 0) {
        throw new PipelineError(
          "E_BAD_REQUEST",
          `--rows: unknown ${unknown.join(", ")} (allowed: ${all.map((r) => r.name).join(", ")})`,
        );
      }
      const rows = all.filter((r, i) => i === 0 || !wanted || wanted.includes(r.name));
      const prompts = benchPrompts(count);
      const v = model.info.config.video;
      const video = { width: v.width, height: v.height, frames: v.frames, fps: v.fps };
      const tty = process.stderr.isTTY === true;
      const loadBefore = loadavg();
      const table = await runBench(model, {
        prompts,
        rows,
        repeats,
        video,
        signal,
        onRun: (row, index, total, report) => {
          const t = report.timings;
          process.stderr.write(
            tty
              ? `[${index}/${total}] ${row.padEnd(10)} ${t.total.toFixed(3)} s (denoise ${t.denoise.toFixed(3)} s, ${report.nfe} NFE)\n`
              : `${JSON.stringify({ event: "bench-run", row, index, total, seconds: t.total, denoise: t.denoise, nfe: report.nfe })}\n`,
          );
        },
        onRow: (row) => {
          process.stderr.write(
            tty
              ? `${benchTable([row]).split("\n")[2]}\n`
              : `${JSON.stringify({ event: "bench-row", ...row })}\n`,
          );
        },
      });
      const result: BenchResult = {
        machine: describeMachine(),
        model: { name: model.info.config.name, dir: displayPath(model.info.dir) },
        command: `framefleet bench ${args.join(" ")}`.trim(),
        date: new Date().toISOString().slice(0, 10),
        suite: {
          prompts: prompts.length,
          heldOut: prompts.filter((p) => p.heldOut).length,
          repeats,
          quick: values.quick === true,
        },
        video,
        load: { before: loadBefore, after: loadavg() },
        threads: engineCapabilities().threads,
        rows: table,
      };
      if (values["write-docs"]) {
        const docs = values.docs ?? join(REPO_ROOT, "docs", "BENCHMARKS.md");
        await writeBenchDocs(docs, result);
        process.stderr.write(`wrote the table into ${docs}\n`);
      }
      process.stdout.write(values.json ? `${JSON.stringify(result, null, 2)}\n` : `${benchTable(table)}\n`);
      return 0;
    });
  },
};
