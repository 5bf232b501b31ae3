// Resolving an AcceleratedModel's files where the operator can see them (builtin models ship in
// the operator's image; hostPath directories on development clusters): digest, size, parameter
// count, safetensors headers checked against the file sizes, and memory needed per GPU class.
// PVC and HTTP sources are resolved by the workers that mount or download them.
import { createHash } from "node:crypto";
import { open, readdir, readFile, stat } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { AcceleratedModelSpec } from "../api/index.ts";
import { type ModelInfo, readModelInfo } from "../pipeline/model-dir.ts";

/** Where builtin models live: models/<name> at the root of the installed package. */
export const BUILTIN_MODELS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "../../models");

export class ArtifactError extends Error {
  constructor(
    readonly reason: "ArtifactUnavailable" | "ArtifactCorrupt",
    message: string,
  ) {
    super(message);
  }
}

/** The directory of a model source the operator can read, or undefined (PVC, HTTP). */
export function localModelDir(source: AcceleratedModelSpec["source"]): string | undefined {
  if (source.builtin) return join(BUILTIN_MODELS_DIR, source.builtin);
  if (source.hostPath) return source.hostPath;
  return undefined;
}

export interface Artifact {
  info: ModelInfo;
  sha256: string;
  bytes: number;
  parameters: number;
  /** Bytes of the largest set of weights a worker holds at once. */
  weightBytes: number;
}

const DTYPE_BYTES: Record<string, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

interface TensorHeader {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** Checks a safetensors header against the file: every tensor in bounds and sized by its shape. */
export async function checkSafetensors(path: string): Promise<{ parameters: number; bytes: number }> {
  const name = path.split("/").pop();
  const size = (await stat(path)).size;
  const fh = await open(path, "r");
  try {
    if (size < 8)
      throw new ArtifactError("ArtifactCorrupt", `${name}: ${size} bytes, too short for a safetensors file`);
    const lenBuf = Buffer.alloc(8);
    await fh.read(lenBuf, 0, 8, 0);
    const headerLen = Number(lenBuf.readBigUInt64LE(0));
    if (headerLen > size - 8 || headerLen > 100 * 1024 * 1024) {
      throw new ArtifactError(
        "ArtifactCorrupt",
        `${name}: header length ${headerLen} exceeds the file (${size} bytes); the file is truncated or not safetensors`,
      );
    }
    const headerBuf = Buffer.alloc(headerLen);
    await fh.read(headerBuf, 0, headerLen, 8);
    let header: Record<string, TensorHeader | Record<string, string>>;
    try {
      header = JSON.parse(headerBuf.toString("utf8"));
    } catch {
      throw new ArtifactError("ArtifactCorrupt", `${name}: header is not valid JSON`);
    }
    const dataBytes = size - 8 - headerLen;
    let parameters = 0;
    for (const [tensor, entry] of Object.entries(header)) {
      if (tensor === "__metadata__") continue;
      const t = entry as TensorHeader;
      const width = DTYPE_BYTES[t.dtype];
      const count = t.shape?.reduce((a, b) => a * b, 1) ?? Number.NaN;
      const [begin, end] = t.data_offsets ?? [Number.NaN, Number.NaN];
      if (width === undefined)
        throw new ArtifactError("ArtifactCorrupt", `${name}: ${tensor} has unknown dtype ${t.dtype}`);
      if (!(begin >= 0 && end <= dataBytes && end - begin === count * width)) {
        throw new ArtifactError(
          "ArtifactCorrupt",
          `${name}: tensor ${tensor} spans bytes [${begin}, ${end}) but the data section has ${dataBytes} bytes and its shape needs ${count * width}`,
        );
      }
      parameters += count;
    }
    return { parameters, bytes: size };
  } finally {
    await fh.close();
  }
}

const cache = new Map<string, { stamp: string; artifact: Artifact }>();

/** Resolves and checks a local model directory; results are cached by file sizes and times. */
export async function resolveArtifact(dir: string): Promise<Artifact> {
  let names: string[];
  try {
    names = (await readdir(dir))
      .filter((n) => n === "config.json" || n === "vocab.txt" || n.endsWith(".safetensors"))
      .sort();
  } catch (err) {
    throw new ArtifactError(
      "ArtifactUnavailable",
      `model directory ${dir} is not readable: ${(err as Error).message}`,
    );
  }
  const stats = await Promise.all(names.map((n) => stat(join(dir, n))));
  const stamp = names.map((n, i) => `${n}:${stats[i]?.size}:${stats[i]?.mtimeMs}`).join("|");
  const hit = cache.get(dir);
  if (hit?.stamp === stamp) return hit.artifact;
  let info: ModelInfo;
  try {
    info = await readModelInfo(dir);
  } catch (err) {
    throw new ArtifactError("ArtifactCorrupt", (err as Error).message);
  }
  const weights = names.filter((n) => n.endsWith(".safetensors"));
  if (!weights.includes("dit.safetensors")) {
    throw new ArtifactError("ArtifactUnavailable", `model directory ${dir} has no dit.safetensors`);
  }
  const hash = createHash("sha256");
  let bytes = 0;
  let parameters = 0;
  let weightBytes = 0;
  for (const n of names) {
    const data = await readFile(join(dir, n));
    hash.update(n).update(data);
    bytes += data.length;
    if (n.endsWith(".safetensors")) {
      const checked = await checkSafetensors(join(dir, n));
      if (n === "dit.safetensors") parameters = checked.parameters;
      // A worker holds one DiT (teacher or student) plus the text encoder and VAE.
      if (n !== "student.safetensors") weightBytes += checked.bytes;
    }
  }
  const artifact: Artifact = { info, sha256: hash.digest("hex"), bytes, parameters, weightBytes };
  cache.set(dir, { stamp, artifact });
  return artifact;
}

const GiB = 1024 ** 3;

/**
 * Memory a worker needs for one video, in GiB: weights (fp32, plus INT8 copies for w8a8),
 * activations of the widest layer over all tokens, one layer's dense attention scores, the
 * decoded frames, and a fixed runtime overhead. An estimate meant to be conservative.
 */
export function requiredGiB(
  artifact: Pick<Artifact, "weightBytes" | "info">,
  video: { width: number; height: number; frames: number },
): number {
  const cfg = artifact.info.config;
  const dit = cfg.dit as {
    patch_size: [number, number, number];
    dim?: number;
    heads?: number;
    ffn_dim?: number;
  };
  const [pt, ph, pw] = dit.patch_size;
  const k = 2 ** cfg.vae.temporal_upsample.filter(Boolean).length;
  const latentFrames = Math.ceil((video.frames - 1) / k + 1);
  const tokens =
    Math.ceil(latentFrames / pt) * Math.ceil(video.height / 8 / ph) * Math.ceil(video.width / 8 / pw);
  const dim = dit.dim ?? 1024;
  const heads = dit.heads ?? 16;
  const ffn = dit.ffn_dim ?? 4 * dim;
  const activations = tokens * (4 * dim + ffn) * 4 * 2; // two streams for classifier-free guidance
  const scores = heads * tokens * tokens * 4;
  const frames = video.width * video.height * video.frames * 3 * 4;
  const bytes = artifact.weightBytes * 1.25 + activations + scores + frames + 0.25 * GiB;
  return Math.round((bytes / GiB) * 100) / 100;
}
