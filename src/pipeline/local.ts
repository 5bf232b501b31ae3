// Running the pipeline on this machine: finding a model directory from a name or a path, loading
// it into the native engine, and turning errors into one line and an exit status.
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type Capabilities, capabilities, loadModel } from "../native/index.ts";
import type { Engine } from "./engine.ts";
import { errorCode, isAbort, isInputError } from "./errors.ts";
import { readModelInfo } from "./model-dir.ts";
import type { PipelineModel } from "./run.ts";

/** The repository root (where models/ and manifests/ live). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/**
 * Directory of the bundled models; `FRAMEFLEET_MODELS_DIR` overrides it (default: models/ of the
 * checkout), which is where an AcceleratedModel's `builtin` source points.
 */
export function modelsRoot(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.FRAMEFLEET_MODELS_DIR ?? join(REPO_ROOT, "models"));
}

/** A path (anything with a slash, or an existing directory) is used as is; a name is a bundled model. */
export function resolveModelDir(nameOrPath: string, env: NodeJS.ProcessEnv = process.env): string {
  if (nameOrPath.includes("/") || nameOrPath.startsWith(".") || existsSync(nameOrPath))
    return resolve(nameOrPath);
  return join(modelsRoot(env), nameOrPath);
}

export interface LoadedModel extends PipelineModel {
  loadSeconds: number;
  /** Where the denoiser runs, as reports name it: "cpu (16 threads, amx kernels)", "cuda (NVIDIA H200, sm_90)". */
  backend?: string;
  /** Why the engine chose the CPU although it was built with CUDA (no device, no driver, ...). */
  backendNote?: string;
}

/**
 * Reads the model directory and loads its weights into the native engine, on the backend
 * FRAMEFLEET_BACKEND names (default auto: the GPU when one is usable).
 */
export async function loadLocalModel(dir: string): Promise<LoadedModel> {
  const info = await readModelInfo(dir);
  const start = performance.now();
  const model = await loadModel(dir);
  const engine: Engine = model;
  return {
    info,
    engine,
    loadSeconds: (performance.now() - start) / 1000,
    backend: model.backendLabel,
    backendNote: model.backendNote,
  };
}

export { gpuDescription } from "../native/index.ts";

/** What the engine reports about this machine: CPU, SIMD features, backends. */
export function engineCapabilities(): Capabilities {
  return capabilities();
}

/** Exit status of a command that failed with `err`: 2 for bad input, 130 for Ctrl-C, 1 otherwise. */
export function exitCodeFor(err: unknown): number {
  if (isAbort(err)) return 130;
  if (isInputError(err)) return 2;
  return 1;
}

/** One line for the terminal: the message, prefixed with the code when it is not bad input. */
export function describeError(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const code = errorCode(err);
  if (isInputError(err) || isAbort(err) || !code) return message.split("\n")[0] ?? message;
  return `${code}: ${message.split("\n")[0]}`;
}

/**
 * Runs a command body with Ctrl-C wired to an AbortSignal: the first SIGINT or SIGTERM aborts
 * (the engine stops within one denoising step and the pipeline removes partial files), a second
 * one exits at once. Errors become one line on stderr and the exit status of exitCodeFor.
 */
export async function runCancellable(
  command: string,
  body: (signal: AbortSignal) => Promise<number>,
): Promise<number> {
  const controller = new AbortController();
  const cancel = () => {
    if (controller.signal.aborted) process.exit(130);
    controller.abort();
  };
  process.on("SIGINT", cancel);
  process.on("SIGTERM", cancel);
  try {
    return await body(controller.signal);
  } catch (err) {
    process.stderr.write(`framefleet ${command}: ${describeError(err)}\n`);
    return exitCodeFor(err);
  } finally {
    process.off("SIGINT", cancel);
    process.off("SIGTERM", cancel);
  }
}
