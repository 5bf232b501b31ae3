import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { API_VERSION, formatProblems, JOB_KIND, validateDocument, validateYaml } from "../../api/index.ts";
import { PipelineError } from "../../pipeline/errors.ts";
import { loadLocalModel, resolveModelDir, runCancellable } from "../../pipeline/local.ts";
import { readModelInfo } from "../../pipeline/model-dir.ts";
import { createProgress } from "../../pipeline/progress.ts";
import type { Report } from "../../pipeline/report.ts";
import { type PipelineSpec, runPipeline, validateSpec } from "../../pipeline/run.ts";
import { findFfmpeg } from "../../pipeline/video.ts";
import type { Command } from "../main.ts";

const usage = `usage: framefleet generate (-f JOB.yaml | --prompt TEXT) [options]

Generates a video on this machine with the pipeline the workers run, and writes the video, a
preview PNG (contact sheet of frames) and a JSON report into --out.

job:
  -f, --filename FILE       a VideoGenerationJob manifest (the first job in the file)
  --prompt TEXT             what to generate (every word in the model's vocabulary)
  --negative-prompt TEXT    what to steer away from
  --seed N                  noise seed (default 0)
  --profile NAME            acceleration profile of the model (default turbo)
  --width N --height N      size in pixels, multiples of 16 (default 128x128)
  --frames N --fps N        frames, of the form 1 + 4k (default 33), and frame rate (default 16)
  --steps N --guidance-scale G
  --attention dense|sage|sla --sla-topk F --linear fp32|bf16|w8a8
  --sampler euler|rcm --weights dit|student --teacache T
  --format mp4|webp|png-frames
  Flags override the manifest's fields.
run:
  --model NAME|DIR          a bundled model name or a model directory (default: spec.model)
  --out DIR                 output directory (default out)
  --name NAME               file stem of the outputs (default: the job's name)
  --json                    print the report as JSON on stdout
Progress goes to stderr: bars on a terminal, JSON lines otherwise. Ctrl-C cancels within one
denoising step and removes partial files.
Exit status: 0 done, 1 failure, 2 bad input (unknown words, sizes off the grid, missing model), 130 cancelled.`;

const options = {
  filename: { type: "string", short: "f" },
  prompt: { type: "string" },
  "negative-prompt": { type: "string" },
  seed: { type: "string" },
  profile: { type: "string" },
  width: { type: "string" },
  height: { type: "string" },
  frames: { type: "string" },
  fps: { type: "string" },
  steps: { type: "string" },
  "guidance-scale": { type: "string" },
  attention: { type: "string" },
  "sla-topk": { type: "string" },
  linear: { type: "string" },
  sampler: { type: "string" },
  weights: { type: "string" },
  teacache: { type: "string" },
  format: { type: "string" },
  model: { type: "string" },
  out: { type: "string" },
  name: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof options; args: string[] }>>["values"];

/** A number flag as the schema should see it: a number, or the text itself so the message shows it. */
function num(text: string | undefined): number | string | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  return text.trim() !== "" && Number.isFinite(n) ? n : text;
}

function defined(entries: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(entries).filter(([, v]) => v !== undefined));
}

function asRecord(value: unknown): Record<string, unknown> {
  return value && typeof value === "object" ? (value as Record<string, unknown>) : {};
}

/** The job a command line describes: the manifest's (if any) with the flags laid over it. */
export async function jobFromArgs(
  values: Values,
): Promise<{ name: string; modelName: string; spec: PipelineSpec }> {
  let doc: Record<string, unknown> = {
    apiVersion: API_VERSION,
    kind: JOB_KIND,
    metadata: { name: "video" },
    spec: {},
  };
  if (values.filename) {
    let text: string;
    try {
      text = readFileSync(values.filename === "-" ? 0 : values.filename, "utf8");
    } catch (err) {
      throw new PipelineError("E_BAD_REQUEST", `cannot read ${values.filename}: ${(err as Error).message}`);
    }
    const verdicts = validateYaml(text);
    const verdict = verdicts.find((v) => v.kind === JOB_KIND) ?? verdicts.find((v) => v.problems.length > 0);
    if (!verdict) throw new PipelineError("E_BAD_REQUEST", `${values.filename} holds no ${JOB_KIND}`);
    if (verdict.problems.length > 0) {
      throw new PipelineError("E_BAD_REQUEST", `${values.filename}: ${formatProblems(verdict).join("; ")}`);
    }
    doc = asRecord(verdict.value);
  }
  const spec = asRecord(doc.spec);
  const metadata = asRecord(doc.metadata);
  const modelFlag = values.model;
  const acceleration = defined({
    ...asRecord(spec.acceleration),
    attention: values.attention,
    slaTopK: num(values["sla-topk"]),
    linear: values.linear,
    sampler: values.sampler,
    weights: values.weights,
    teaCache: num(values.teacache),
  });
  const sampling = defined({
    ...asRecord(spec.sampling),
    steps: num(values.steps),
    guidanceScale: num(values["guidance-scale"]),
  });
  const modelName =
    typeof spec.model === "string"
      ? spec.model
      : modelFlag && !modelFlag.includes("/")
        ? modelFlag
        : "tiny-shapes";
  const merged = defined({
    ...spec,
    model: /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(modelName) ? modelName : "local",
    prompt: values.prompt ?? spec.prompt,
    negativePrompt: values["negative-prompt"] ?? spec.negativePrompt,
    seed: num(values.seed) ?? spec.seed,
    profile: values.profile ?? spec.profile,
    video: defined({
      ...asRecord(spec.video),
      width: num(values.width),
      height: num(values.height),
      frames: num(values.frames),
      fps: num(values.fps),
    }),
    sampling: Object.keys(sampling).length > 0 ? sampling : undefined,
    acceleration: Object.keys(acceleration).length > 0 ? acceleration : undefined,
    output: defined({ ...asRecord(spec.output), format: values.format }),
  });
  if (merged.prompt === undefined)
    throw new PipelineError("E_BAD_REQUEST", "a prompt is required: pass --prompt TEXT or -f JOB.yaml");
  const verdict = validateDocument({ ...doc, spec: merged });
  if (verdict.problems.length > 0) {
    const problems = values.filename
      ? `${values.filename}: ${formatProblems(verdict).join("; ")}`
      : verdict.problems.map((p) => `${p.path ? `${p.path}: ` : ""}${p.message}`).join("; ");
    throw new PipelineError("E_BAD_REQUEST", problems);
  }
  const job = asRecord(verdict.value);
  const name = values.name ?? (typeof metadata.name === "string" ? metadata.name : "video");
  return { name, modelName: modelFlag ?? modelName, spec: job.spec as PipelineSpec };
}

function human(report: Report): string {
  const kb = (report.output.bytes / 1024).toFixed(1);
  const t = report.timings;
  const s = (x: number) => `${x.toFixed(2)} s`;
  return [
    `video    ${report.output.path} (${report.output.format}, ${report.width}x${report.height}, ${report.frames} frames at ${report.fps} fps, ${kb} KiB)`,
    `preview  ${report.preview.path}`,
    `report   ${report.report}`,
    `${report.model}/${report.profile} on ${report.backend}: ${report.nfe} NFE; text ${s(t.textEncode)}, denoise ${s(t.denoise)}, ` +
      `decode ${s(t.decode)}, encode ${s(t.encode)}; total ${s(t.total)}` +
      (t.load !== undefined ? ` (+ load ${s(t.load)})` : ""),
  ].join("\n");
}

/** Parses, validates, loads and runs; resolves to the exit status. Shared with `framefleet start`. */
export async function generate(args: string[]): Promise<number> {
  let values: Values;
  try {
    ({ values } = parseArgs({ args, options, strict: true, allowPositionals: false }));
  } catch (err) {
    process.stderr.write(`framefleet generate: ${(err as Error).message}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  const progress = createProgress(process.stderr);
  return runCancellable("generate", async (signal) => {
    try {
      // Probing ffmpeg starts a process; let it answer while the model loads.
      void findFfmpeg();
      const { name, modelName, spec } = await jobFromArgs(values);
      const dir = resolveModelDir(modelName);
      validateSpec(await readModelInfo(dir), spec);
      const model = await loadLocalModel(dir);
      const report = await runPipeline(model, spec, {
        outDir: values.out ?? "out",
        name,
        signal,
        loadSeconds: model.loadSeconds,
        onProgress: (e) => progress.update(e),
        onNotice: (m) => progress.notice(m),
      });
      progress.finish();
      process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : `${human(report)}\n`);
      return 0;
    } finally {
      progress.finish();
    }
  });
}

export const command: Command = {
  summary: "generate a video on this machine (from a job manifest or flags)",
  run: generate,
};
