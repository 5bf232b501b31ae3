// The TypeScript face of the native engine (native/): finds and loads the addon, validates every
// request with zod before it crosses into C++, and turns native failures into NativeErrors that
// carry a code and the caller's stack. The C++ side checks everything again.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { KnobsSchema } from "../api/knobs.ts";

/** Codes of errors raised by the engine (and by this module before a call crosses into C++). */
export const NATIVE_ERROR_CODES = [
  "E_MODEL_FORMAT",
  "E_BAD_REQUEST",
  "E_ABORTED",
  "E_OUT_OF_MEMORY",
  "E_NUMERIC",
  "E_INTERNAL",
  "E_NATIVE_UNAVAILABLE",
] as const;
export type NativeErrorCode = (typeof NATIVE_ERROR_CODES)[number];

export class NativeError extends Error {
  readonly code: NativeErrorCode;
  constructor(code: NativeErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "NativeError";
    this.code = code;
  }
}

/** One generation. Knobs sit beside the prompt; unset ones take the model's config.json defaults. */
export const GenerateRequestSchema = z.strictObject({
  prompt: z.string().max(4096),
  /** The unconditional CFG prompt; default "" (the empty prompt). */
  negativePrompt: z.string().max(4096).optional(),
  /** Seeds the noise: the same seed on the same machine gives the same frames, bit for bit. */
  seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  /** Default: config.json video.width; a multiple of video.spatial_multiple up to max_width. */
  width: z.number().int().min(8).max(8192).optional(),
  /** Default: config.json video.height. */
  height: z.number().int().min(8).max(8192).optional(),
  /** Default: config.json video.frames; 1 + 4k for the family's VAE. */
  frames: z.number().int().min(1).max(4096).optional(),
  ...KnobsSchema.shape,
  /** Default: config.json sampling.steps (euler), 4 (rcm). */
  steps: z.number().int().min(1).max(1000).optional(),
  /** Default: config.json sampling.guidance_scale (euler); rcm requires 1. */
  guidanceScale: z.number().min(0).max(100).optional(),
});
export type GenerateRequest = z.infer<typeof GenerateRequestSchema>;

/** Where the denoiser runs: auto = CUDA when this build has it and a GPU is visible, else the CPU. */
export const BACKENDS = ["auto", "cpu", "cuda"] as const;

export const LoadOptionsSchema = z.strictObject({
  /** Requests needing more working memory fail with E_OUT_OF_MEMORY; default: MemAvailable, bounded by the cgroup limit. */
  memoryLimitBytes: z.number().int().min(0).optional(),
  /**
   * Default: $FRAMEFLEET_BACKEND, else "auto". "cuda" on a build without CUDA or a machine
   * without a usable GPU fails the load with E_BAD_REQUEST naming why.
   */
  backend: z.enum(BACKENDS).optional(),
});
export type LoadOptions = z.infer<typeof LoadOptionsSchema>;

export const STAGES = ["textEncode", "denoise", "decode"] as const;
export type Stage = (typeof STAGES)[number];

export interface Progress {
  stage: Stage;
  step: number;
  totalSteps: number;
}

export interface Timings {
  /** First use of a weight file in this process: conversion to fp32 and the finiteness check. */
  prepareWeights: number;
  textEncode: number;
  denoise: number;
  decode: number;
  total: number;
}

export interface ResolvedKnobs {
  attention: "dense" | "sage" | "sla";
  slaTopK: number;
  linear: "fp32" | "bf16" | "w8a8";
  sampler: "euler" | "rcm";
  steps: number;
  guidanceScale: number;
  teaCache: number;
  weights: "dit" | "student";
}

export interface GenerateResult {
  /** uint8 RGB, frameCount x height x width x 3. */
  frames: Buffer;
  width: number;
  height: number;
  frameCount: number;
  /** DiT evaluations run. */
  nfe: number;
  /**
   * The backend that ran it: `cpu (N threads, <highest kernel variant> kernels)` or
   * `cuda (<GPU>, sm_XY)`, the latter followed by `; <kind> linears ran as bf16` when the
   * request's linear knob is not bf16 (the GPU runs every linear as bf16 on cuBLAS).
   */
  backend: string;
  /** Seconds. */
  timings: Timings;
  knobs: ResolvedKnobs;
}

export interface CudaDevice {
  name: string;
  /** "9.0" for an H100/H200, "12.0" for an RTX 5090. */
  computeCapability: string;
  memoryBytes: number;
}

export interface Capabilities {
  /** The backends this build has: "cpu", and "cuda" when it was compiled with nvcc. */
  backends: string[];
  /** The GPU a model loaded now would use (device), or why none would be (reason). */
  cuda: { built: boolean; device?: CudaDevice; reason?: string };
  threads: number;
  cpu: { brand: string; features: string[]; variantScores: Record<string, number> };
  /** Knob values this build runs; others are rejected with E_BAD_REQUEST. */
  knobs: { attention: string[]; linear: string[]; sampler: string[]; weights: string[]; teaCache: boolean };
}

export interface GenerateOptions {
  onProgress?: (progress: Progress) => void;
  /** Aborting stops the run within one denoising step; the promise rejects with E_ABORTED. */
  signal?: AbortSignal;
}

interface NativeModelHandle {
  generate(
    request: GenerateRequest,
    onProgress: ((p: Progress) => void) | undefined,
    abortFlag: Int32Array,
  ): Promise<Omit<GenerateResult, "backend">>;
  info(): {
    dir: string;
    config: string;
    hasStudent: boolean;
    weightBytes: number;
    backend: "cpu" | "cuda";
    backendNote?: string;
  };
}

interface Addon {
  loadModel(dir: string, options: LoadOptions): Promise<NativeModelHandle>;
  capabilities(): Capabilities;
}

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** Where the addon is loaded from: FRAMEFLEET_NATIVE_ADDON, else native/build of this checkout. */
export function addonPath(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.FRAMEFLEET_NATIVE_ADDON ?? join(repoRoot, "native", "build", "framefleet_native.node"));
}

let addon: Addon | undefined;

function loadAddon(): Addon {
  if (addon) return addon;
  const path = addonPath();
  const fix = "build it with `npm run build:native` (needs cmake, ninja and g++)";
  if (!existsSync(path)) {
    throw new NativeError("E_NATIVE_UNAVAILABLE", `the native engine ${path} is missing; ${fix}`);
  }
  try {
    addon = createRequire(import.meta.url)(path) as Addon;
  } catch (err) {
    const reason = (err as Error).message.split("\n")[0];
    throw new NativeError(
      "E_NATIVE_UNAVAILABLE",
      `the native engine ${path} could not be loaded (${reason}); ${fix}`,
      {
        cause: err,
      },
    );
  }
  return addon;
}

/** Rebuilds a native rejection as a NativeError whose stack is the caller's, not the event loop's. */
function fromNative(err: unknown, callSite: Error): NativeError {
  const raw = err as { code?: unknown; message?: unknown };
  const code = NATIVE_ERROR_CODES.includes(raw?.code as NativeErrorCode)
    ? (raw.code as NativeErrorCode)
    : "E_INTERNAL";
  const e = new NativeError(code, typeof raw?.message === "string" ? raw.message : String(err), {
    cause: err,
  });
  e.stack = `NativeError [${code}]: ${e.message}\n${(callSite.stack ?? "").split("\n").slice(1).join("\n")}`;
  return e;
}

function badRequest(error: z.ZodError, what: string): NativeError {
  const issues = error.issues.map((i) => `${[what, ...i.path].join(".")}: ${i.message}`);
  return new NativeError("E_BAD_REQUEST", issues.join("; "));
}

/** What the engine can run on this machine. */
export function capabilities(): Capabilities {
  return loadAddon().capabilities();
}

/** `NVIDIA H200, sm_90`: a CUDA device by name and architecture. */
export function gpuDescription(device: CudaDevice | undefined): string {
  return device
    ? `${device.name}, sm_${device.computeCapability.replace(".", "")}`
    : "unknown GPU, no device";
}

/**
 * `cpu (2 threads, amx kernels)`: the CPU backend, its threads, and the highest kernel variant the
 * engine's dispatch may pick here (its scores, not a list kept here); `cuda (NVIDIA H200, sm_90)`:
 * the GPU the CUDA backend runs on.
 */
export function backendDescription(
  caps: Capabilities = capabilities(),
  backend: "cpu" | "cuda" = "cpu",
): string {
  if (backend === "cuda") return `cuda (${gpuDescription(caps.cuda.device)})`;
  const [top] = Object.entries(caps.cpu.variantScores)
    .filter(([, score]) => score > 0)
    .sort((a, b) => b[1] - a[1]);
  const threads = `${caps.threads} thread${caps.threads === 1 ? "" : "s"}`;
  return `cpu (${threads}, ${top?.[0] ?? "scalar"} kernels)`;
}

/**
 * The backend a run reports: the model's label, and on CUDA, where every linear runs as bf16 on
 * cuBLAS, what became of another linear knob (`cuda (NVIDIA H200, sm_90); w8a8 linears ran as bf16`).
 */
export function runBackend(
  label: string,
  backend: "cpu" | "cuda",
  knobs: Pick<ResolvedKnobs, "linear">,
): string {
  return backend === "cuda" && knobs.linear !== "bf16"
    ? `${label}; ${knobs.linear} linears ran as bf16`
    : label;
}

export class Model {
  readonly dir: string;
  readonly hasStudent: boolean;
  readonly weightBytes: number;
  /** config.json as parsed by the engine's loader (already checked against the tensors). */
  readonly config: unknown;
  /** Where the denoiser runs; text encoder and VAE decoder run on the CPU either way. */
  readonly backend: "cpu" | "cuda";
  /** Why auto chose the CPU on a build with CUDA (no device, no driver, shapes); else undefined. */
  readonly backendNote: string | undefined;
  /** The backend as every report names it, e.g. "cuda (NVIDIA H200, sm_90)". */
  readonly backendLabel: string;
  readonly #handle: NativeModelHandle;

  constructor(handle: NativeModelHandle) {
    this.#handle = handle;
    const info = handle.info();
    this.dir = info.dir;
    this.hasStudent = info.hasStudent;
    this.weightBytes = info.weightBytes;
    this.config = JSON.parse(info.config);
    this.backend = info.backend;
    this.backendNote = info.backendNote;
    this.backendLabel = backendDescription(capabilities(), info.backend);
  }

  /** Encodes the prompt, denoises and decodes off the main thread; timings cover each stage. */
  async generate(request: GenerateRequest, options: GenerateOptions = {}): Promise<GenerateResult> {
    const callSite = new Error();
    const parsed = GenerateRequestSchema.safeParse(request);
    if (!parsed.success) throw badRequest(parsed.error, "request");
    const { signal, onProgress } = options;
    if (signal?.aborted) throw fromNative({ code: "E_ABORTED", message: "generation aborted" }, callSite);
    const abortFlag = new Int32Array(1);
    const onAbort = () => Atomics.store(abortFlag, 0, 1);
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      const result = await this.#handle.generate(parsed.data, onProgress, abortFlag);
      return { ...result, backend: runBackend(this.backendLabel, this.backend, result.knobs) };
    } catch (err) {
      throw fromNative(err, callSite);
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }
}

/** Maps the model directory and checks config.json, vocab.txt and every tensor header. */
export async function loadModel(dir: string, options: LoadOptions = {}): Promise<Model> {
  const callSite = new Error();
  const parsed = LoadOptionsSchema.safeParse(options);
  if (!parsed.success) throw badRequest(parsed.error, "options");
  const native = loadAddon();
  try {
    return new Model(await native.loadModel(resolve(dir), parsed.data));
  } catch (err) {
    throw fromNative(err, callSite);
  }
}
