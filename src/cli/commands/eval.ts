import { parseArgs } from "node:util";
import { type EvalReport, runEval } from "../../eval/run-eval.ts";
import type { ProfileScore } from "../../eval/scoring.ts";
import { maxPromptsPerSplit, splits } from "../../eval/suite.ts";
import { PipelineError } from "../../pipeline/errors.ts";
import { loadLocalModel, resolveModelDir, runCancellable } from "../../pipeline/local.ts";
import type { Command } from "../main.ts";

const usage = `usage: framefleet eval [--json] [--profile P]... [--prompts N] [--seeds K] [--model NAME|DIR] [--sheets DIR] [--compare FILE]

Prompt adherence of the model's videos: generates the prompt suite (seen and held-out
combinations of docs/DATASET.md, each under K seeds) with the native engine for each profile, reads
every clip with the analyzer (colour, shape, direction of motion, background) and reports the
fraction right per attribute and overall (colour, shape and direction all right), per split.
  --json             print {"profiles": {P: {"seen": {...}, "heldOut": {...}, ...}}, ...} on stdout
  --profile P        a profile of the model, changed for an ablation if asked: P@N runs it in N
                     steps, P:KEY=VALUE,... sets knobs (baseline@4:guidanceScale=4,
                     turbo:linear=fp32); repeat for several (default: baseline and turbo)
  --prompts N        prompts per split (default 8; the held-out split has at most ${maxPromptsPerSplit.heldOut})
  --seeds K          seeds per prompt, 1..K (default 2)
  --model NAME|DIR   model (default tiny-shapes)
  --sheets DIR       write a contact sheet PNG of every clip there (named by split, prompt, seed, profile)
  --compare FILE     write one PNG: a row per clip (the suite's first 16, 8 frames each), the profiles side by side
Progress goes to stderr.`;

export interface EvalArgs {
  json: boolean;
  profiles: string[];
  prompts: number;
  seeds: number;
  model: string;
  /** Directory for per-clip contact sheets; none are written when absent. */
  sheets?: string;
  /** PNG comparing the profiles clip by clip; none is written when absent. */
  compare?: string;
  help: boolean;
}

function positiveInt(text: string | undefined, flag: string, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) {
    throw new PipelineError("E_BAD_REQUEST", `${flag}: must be a positive integer (got ${text})`);
  }
  return n;
}

/** Reads the command line; bad values are PipelineErrors with code E_BAD_REQUEST. */
export function parseEvalArgs(args: string[]): EvalArgs {
  let values: {
    json?: boolean;
    profile?: string[];
    prompts?: string;
    seeds?: string;
    model?: string;
    sheets?: string;
    compare?: string;
    help?: boolean;
  };
  try {
    ({ values } = parseArgs({
      args,
      options: {
        json: { type: "boolean" },
        profile: { type: "string", multiple: true },
        prompts: { type: "string" },
        seeds: { type: "string" },
        model: { type: "string" },
        sheets: { type: "string" },
        compare: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (err) {
    throw new PipelineError("E_BAD_REQUEST", (err as Error).message);
  }
  const profiles = [...new Set(values.profile ?? ["baseline", "turbo"])];
  for (const p of profiles) {
    if (p.trim() === "")
      throw new PipelineError("E_BAD_REQUEST", "--profile: a profile name cannot be empty");
  }
  return {
    json: values.json === true,
    profiles,
    prompts: positiveInt(values.prompts, "--prompts", 8),
    seeds: positiveInt(values.seeds, "--seeds", 2),
    model: values.model ?? "tiny-shapes",
    ...(values.sheets === undefined ? {} : { sheets: values.sheets }),
    ...(values.compare === undefined ? {} : { compare: values.compare }),
    help: values.help === true,
  };
}

const percent = (x: number) => `${(100 * x).toFixed(1)}%`.padStart(7);

/** The report as a table: one row per profile and split. */
export function evalTable(report: EvalReport): string {
  const lines = [
    `model ${report.model}, ${report.suite.width}x${report.suite.height}, ${report.suite.frames} frames`,
    `${"profile".padEnd(12)}${"split".padEnd(9)}${"n".padStart(5)}${["overall", "colour", "shape", "direction", "backgr."].map((h) => h.padStart(10)).join("")}`,
  ];
  for (const [profile, score] of Object.entries(report.profiles)) {
    for (const split of splits) {
      const s = (score as ProfileScore)[split];
      lines.push(
        `${profile.padEnd(12)}${split.padEnd(9)}${String(s.n).padStart(5)}${[s.overall, s.colour, s.shape, s.direction, s.background].map((x) => percent(x).padStart(10)).join("")}`,
      );
    }
  }
  return `${lines.join("\n")}\n`;
}

export const command: Command = {
  summary: "prompt accuracy per profile on seen and held-out prompts (--json, --profile, --prompts, --seeds)",
  async run(args) {
    return runCancellable("eval", async (signal) => {
      const options = parseEvalArgs(args);
      if (options.help) {
        process.stdout.write(`${usage}\n`);
        return 0;
      }
      const model = await loadLocalModel(resolveModelDir(options.model));
      const tty = process.stderr.isTTY === true;
      const report = await runEval(model, {
        profiles: options.profiles,
        prompts: options.prompts,
        seeds: options.seeds,
        signal,
        ...(options.sheets === undefined ? {} : { sheetsDir: options.sheets }),
        ...(options.compare === undefined ? {} : { compareSheet: options.compare }),
        onCase: ({ profile, done, total, result }) => {
          const mark = result.verdict.overall ? "ok" : "miss";
          const line = `eval ${profile} ${done}/${total} ${mark} ${result.prompt} (seed ${result.seed}, ${result.seconds.toFixed(1)} s)`;
          process.stderr.write(tty ? `\r\x1b[2K${line}` : `${line}\n`);
        },
      });
      if (tty) process.stderr.write("\n");
      process.stdout.write(options.json ? `${JSON.stringify(report)}\n` : evalTable(report));
      return 0;
    });
  },
};
