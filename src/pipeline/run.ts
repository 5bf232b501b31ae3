// The stage pipeline shared by `framefleet generate`, the bench and the worker:
// validate -> encode text -> denoise -> decode -> write video -> preview, each timed.
// Files are written under attempt-specific temporary names and renamed into place only when the
// whole run succeeds; a failure or a cancellation removes them.
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { basename, dirname, extname, join, resolve } from "node:path";
import type { VideoGenerationJobSpec } from "../api/job.ts";
import { contactSheet, type Frames } from "./contact-sheet.ts";
import { ENGINE_STAGES, type Engine, type EngineResult } from "./engine.ts";
import { errorCode, isAbort, PipelineError } from "./errors.ts";
import { plannedNfe, type ResolvedKnobs, resolveKnobs } from "./knobs.ts";
import { checkPrompt, checkVideoSize, type ModelInfo } from "./model-dir.ts";
import type { Report, StageTimings } from "./report.ts";
import {
  EXTENSIONS,
  type Ffmpeg,
  findFfmpeg,
  MISSING_FFMPEG_MESSAGE,
  plannedFormat,
  startVideoEncoder,
  type VideoEncoder,
  type WrittenFormat,
} from "./video.ts";

export const STAGE_NAMES = ["validate", ...ENGINE_STAGES, "encode", "preview"] as const;
export type StageName = (typeof STAGE_NAMES)[number];

export interface ProgressEvent {
  stage: StageName;
  /** Steps done within the stage; equals totalSteps when the stage ends. */
  step: number;
  totalSteps: number;
}

/** The job fields the pipeline reads (a VideoGenerationJob spec with its defaults applied). */
export type PipelineSpec = Pick<VideoGenerationJobSpec, "prompt" | "negativePrompt" | "seed" | "profile"> &
  Partial<Pick<VideoGenerationJobSpec, "sampling" | "acceleration">> & {
    video: VideoGenerationJobSpec["video"];
    output: VideoGenerationJobSpec["output"];
  };

/** A loaded model: what its directory says (sizes, profiles, vocabulary) and the engine that runs it. */
export interface PipelineModel {
  info: ModelInfo;
  engine: Engine;
}

export interface RunOptions {
  /** Directory the files go to; created when missing. */
  outDir: string;
  /**
   * File stem of the outputs under outDir (default `video`), used when the spec names no output
   * path: `<name>.mp4`, `<name>.preview.png`, `<name>.json`.
   */
  name?: string;
  /** Attempt number, part of the temporary file names so two attempts never share a file (default 1). */
  attempt?: number;
  signal?: AbortSignal;
  onProgress?: (event: ProgressEvent) => void;
  /** Seconds spent loading the model, copied into the report's timings. */
  loadSeconds?: number;
  /** ffmpeg to use; found on PATH (or through FRAMEFLEET_FFMPEG) when not given, `null` for none. */
  ffmpeg?: Ffmpeg | null;
  /** Called with the decoded frames before they are written (the bench compares them). */
  onFrames?: (frames: Frames) => void;
  /** Called once with a message when the written format differs from the requested one. */
  onNotice?: (message: string) => void;
}

/** Where a run's files go, decided once the ffmpeg probe has answered. */
interface OutputPlan {
  format: WrittenFormat;
  video: string;
  videoTemp: string;
  encoder: VideoEncoder;
  /** Why the written format differs from the requested one, when it does. */
  note?: string;
}

/** State passed from stage to stage. */
interface RunState {
  model: PipelineModel;
  spec: PipelineSpec;
  options: RunOptions;
  ffmpeg: Promise<Ffmpeg | undefined>;
  paths: OutputPaths;
  knobs?: ResolvedKnobs;
  result?: EngineResult;
  /**
   * Started when the engine begins decoding (or when it returns, whichever comes first): the
   * encoder's process start-up then overlaps the VAE decode instead of taking a core from the
   * denoiser.
   */
  output?: Promise<OutputPlan>;
  timings: Partial<Record<StageName, number>>;
  /** Temporary paths written so far, removed unless the run succeeds. */
  temporaries: string[];
}

interface Stage {
  run(state: RunState): Promise<void>;
}

const now = () => performance.now() / 1000;

function timed(name: StageName, body: (state: RunState) => Promise<void> | void): Stage {
  return {
    async run(state) {
      const start = now();
      state.options.onProgress?.({ stage: name, step: 0, totalSteps: 1 });
      await body(state);
      state.timings[name] = now() - start;
      state.options.onProgress?.({ stage: name, step: 1, totalSteps: 1 });
    },
  };
}

/** Stages that run at the same time (the encoder is another process; the preview runs meanwhile). */
function concurrently(...stages: Stage[]): Stage {
  return {
    async run(state) {
      const results = await Promise.allSettled(stages.map((s) => s.run(state)));
      const failed = results.find((r) => r.status === "rejected");
      if (failed) throw (failed as PromiseRejectedResult).reason;
    },
  };
}

/**
 * Checks a spec against what the model can do and resolves its knobs; throws E_BAD_REQUEST with
 * a message naming the field. Callers may run it before loading the weights to fail fast.
 */
export function validateSpec(info: ModelInfo, spec: PipelineSpec): ResolvedKnobs {
  checkPrompt(info, "prompt", spec.prompt);
  if (spec.negativePrompt) checkPrompt(info, "negativePrompt", spec.negativePrompt);
  checkVideoSize(info, spec.video);
  return resolveKnobs(info, spec.profile, {
    acceleration: spec.acceleration,
    steps: spec.sampling?.steps,
    guidanceScale: spec.sampling?.guidanceScale,
  });
}

const validateStage = timed("validate", async (state) => {
  state.knobs = validateSpec(state.model.info, state.spec);
  await mkdir(dirname(state.paths.base), { recursive: true });
});

/** Starts the output plan (and with it the encoder) once. */
function startOutput(state: RunState): void {
  if (state.output) return;
  const output = planOutput(state);
  output.catch(() => {
    // Awaited by the encode stage or the cleanup; never an unhandled rejection.
  });
  state.output = output;
}

async function planOutput(state: RunState): Promise<OutputPlan> {
  const { spec, options } = state;
  const ffmpeg = await state.ffmpeg;
  const format = plannedFormat(spec.output.format, ffmpeg);
  const video = videoPath(state.paths, format, spec.output.format);
  const videoTemp = temporary(video, state.paths.attempt);
  state.temporaries.push(videoTemp);
  const encoder = startVideoEncoder(format, spec.video, videoTemp, { ffmpeg, signal: options.signal });
  if (format === spec.output.format) return { format, video, videoTemp, encoder };
  options.onNotice?.(MISSING_FFMPEG_MESSAGE);
  return { format, video, videoTemp, encoder, note: MISSING_FFMPEG_MESSAGE };
}

/** The native engine encodes the text, denoises and decodes in one call and times each part. */
const engineStage: Stage = {
  async run(state) {
    const { model, spec, options } = state;
    const knobs = state.knobs as ResolvedKnobs;
    const start = now();
    const result = await model.engine.generate(
      {
        ...knobs,
        prompt: spec.prompt,
        negativePrompt: spec.negativePrompt ?? "",
        seed: spec.seed ?? 0,
        width: spec.video.width,
        height: spec.video.height,
        frames: spec.video.frames,
      },
      {
        signal: options.signal,
        onProgress: (p) => {
          if (p.stage === "decode") startOutput(state);
          options.onProgress?.(p);
        },
      },
    );
    startOutput(state);
    const wall = now() - start;
    const expected = spec.video.width * spec.video.height * spec.video.frames * 3;
    if (
      result.width !== spec.video.width ||
      result.height !== spec.video.height ||
      result.frameCount !== spec.video.frames ||
      result.frames.length < expected
    ) {
      throw new PipelineError(
        "E_INTERNAL",
        `engine returned ${result.frameCount} frames of ${result.width}x${result.height} (${result.frames.length} bytes), ` +
          `expected ${spec.video.frames} of ${spec.video.width}x${spec.video.height}`,
      );
    }
    state.result = result;
    options.onFrames?.({
      data: result.frames,
      width: result.width,
      height: result.height,
      frameCount: result.frameCount,
    });
    // Stages the engine did not time get what is left of the call's wall time, split evenly.
    const untimed = ENGINE_STAGES.filter((s) => result.timings[s] === undefined);
    const timedSum = ENGINE_STAGES.reduce((sum, s) => sum + (result.timings[s] ?? 0), 0);
    for (const s of ENGINE_STAGES) {
      state.timings[s] = result.timings[s] ?? Math.max(0, wall - timedSum) / untimed.length;
    }
  },
};

function framesOf(state: RunState): Frames {
  const r = state.result as EngineResult;
  return { data: r.frames, width: r.width, height: r.height, frameCount: r.frameCount };
}

const encodeStage = timed("encode", async (state) => {
  const { encoder } = await (state.output as Promise<OutputPlan>);
  await encoder.finish(framesOf(state));
});

const previewStage = timed("preview", async (state) => {
  state.temporaries.push(state.paths.previewTemp);
  await writeFile(state.paths.previewTemp, contactSheet(framesOf(state)));
});

/** The stages of each model format (config.json `format`), in order. */
export const MODEL_TYPES: Record<string, readonly Stage[]> = {
  "framefleet-dit-v1": [validateStage, engineStage, concurrently(encodeStage, previewStage)],
};

interface OutputPaths {
  /** Output path without extension. */
  base: string;
  /** The extension a requested `output.path` carries, kept when the format is written as asked. */
  requestedExt: string;
  preview: string;
  previewTemp: string;
  report: string;
  reportTemp: string;
  attempt: number;
}

function temporary(path: string, attempt: number): string {
  return join(dirname(path), `.${basename(path)}.attempt-${attempt}.partial`);
}

function outputPaths(spec: PipelineSpec, options: RunOptions): OutputPaths {
  const attempt = options.attempt ?? 1;
  const requested = spec.output.path ?? `${options.name ?? "video"}${EXTENSIONS[spec.output.format]}`;
  const requestedExt = extname(requested);
  const base = resolve(options.outDir, requestedExt ? requested.slice(0, -requestedExt.length) : requested);
  return {
    base,
    requestedExt,
    preview: `${base}.preview.png`,
    previewTemp: temporary(`${base}.preview.png`, attempt),
    report: `${base}.json`,
    reportTemp: temporary(`${base}.json`, attempt),
    attempt,
  };
}

function videoPath(paths: OutputPaths, format: WrittenFormat, requested: WrittenFormat): string {
  if (format === "png-frames") return paths.base;
  return `${paths.base}${format === requested && paths.requestedExt ? paths.requestedExt : EXTENSIONS[format]}`;
}

async function sha256AndBytes(
  path: string,
  format: WrittenFormat,
): Promise<{ sha256: string; bytes: number }> {
  if (format !== "png-frames") {
    const data = await readFile(path);
    return { sha256: createHash("sha256").update(data).digest("hex"), bytes: data.length };
  }
  const outer = createHash("sha256");
  let bytes = 0;
  for (const name of (await readdir(path)).sort()) {
    const data = await readFile(join(path, name));
    bytes += data.length;
    outer.update(createHash("sha256").update(data).digest("hex"));
  }
  return { sha256: outer.digest("hex"), bytes };
}

async function moveIntoPlace(from: string, to: string): Promise<void> {
  const existing = await stat(to).catch(() => undefined);
  if (existing?.isDirectory()) await rm(to, { recursive: true, force: true });
  await rename(from, to);
}

/**
 * Runs one job spec on a loaded model and returns its report. Errors are PipelineErrors (or the
 * engine's coded errors): E_BAD_REQUEST and friends for input, E_ABORTED for cancellation.
 */
export async function runPipeline(
  model: PipelineModel,
  spec: PipelineSpec,
  options: RunOptions,
): Promise<Report> {
  const stages = MODEL_TYPES[model.info.config.format];
  if (!stages)
    throw new PipelineError("E_MODEL_FORMAT", `no pipeline for model format ${model.info.config.format}`);
  const start = now();
  const state: RunState = {
    model,
    spec,
    options,
    ffmpeg: options.ffmpeg === undefined ? findFfmpeg() : Promise.resolve(options.ffmpeg ?? undefined),
    paths: outputPaths(spec, options),
    timings: {},
    temporaries: [],
  };
  try {
    for (const stage of stages) {
      if (options.signal?.aborted) throw new PipelineError("E_ABORTED", "cancelled");
      await stage.run(state);
    }
    const { format, video, videoTemp, note } = await (state.output as Promise<OutputPlan>);
    const paths = state.paths;
    const knobs = state.knobs as ResolvedKnobs;
    const result = state.result as EngineResult;
    const file = await sha256AndBytes(videoTemp, format);
    const timings: StageTimings = {
      ...(options.loadSeconds !== undefined ? { load: options.loadSeconds } : {}),
      validate: state.timings.validate ?? 0,
      textEncode: state.timings.textEncode ?? 0,
      denoise: state.timings.denoise ?? 0,
      decode: state.timings.decode ?? 0,
      encode: state.timings.encode ?? 0,
      preview: state.timings.preview ?? 0,
      total: 0,
    };
    const report: Report = {
      model: model.info.config.name,
      modelDir: model.info.dir,
      profile: spec.profile,
      knobs,
      nfe: result.nfe ?? plannedNfe(knobs),
      backend: result.backend ?? "unspecified",
      prompt: spec.prompt,
      negativePrompt: spec.negativePrompt ?? "",
      seed: spec.seed ?? 0,
      width: result.width,
      height: result.height,
      frames: result.frameCount,
      fps: spec.video.fps,
      attempt: options.attempt ?? 1,
      timings,
      output: {
        path: video,
        format,
        requestedFormat: spec.output.format,
        ...file,
        ...(note ? { note } : {}),
      },
      preview: { path: paths.preview },
      report: paths.report,
    };
    options.signal?.throwIfAborted();
    await moveIntoPlace(videoTemp, video);
    await rename(paths.previewTemp, paths.preview);
    timings.total = now() - start;
    state.temporaries.push(paths.reportTemp);
    await writeFile(paths.reportTemp, `${JSON.stringify(report, null, 2)}\n`);
    await rename(paths.reportTemp, paths.report);
    return report;
  } catch (err) {
    const plan = await state.output?.catch(() => undefined);
    await plan?.encoder.cancel();
    await Promise.all(state.temporaries.map((p) => rm(p, { recursive: true, force: true })));
    if (isAbort(err) || options.signal?.aborted) {
      throw new PipelineError("E_ABORTED", "cancelled; partial files removed", { cause: err });
    }
    if (err instanceof PipelineError || errorCode(err)?.startsWith("E_")) throw err;
    throw new PipelineError("E_INTERNAL", (err as Error).message ?? String(err), { cause: err });
  }
}
