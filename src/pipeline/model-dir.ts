// What the pipeline reads from a model directory (docs/MODEL.md) before any native call: the
// sizes, profiles and vocabulary it needs to reject bad input early with a message that says what
// is allowed. The engine reads the same files and checks the tensors.
import { existsSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { ProfileSchema } from "../api/knobs.ts";
import { PipelineError } from "./errors.ts";

const positiveInt = z.number().int().positive();

export const ModelConfigSchema = z.looseObject({
  format: z.literal("framefleet-dit-v1"),
  name: z.string().min(1),
  text: z.looseObject({ vocab_size: positiveInt, max_tokens: positiveInt }),
  dit: z.looseObject({ patch_size: z.tuple([positiveInt, positiveInt, positiveInt]) }),
  vae: z.looseObject({ temporal_upsample: z.array(z.boolean()) }),
  video: z.looseObject({
    width: positiveInt,
    height: positiveInt,
    frames: positiveInt,
    fps: z.number().positive(),
    spatial_multiple: positiveInt,
    max_width: positiveInt,
    max_height: positiveInt,
    max_frames: positiveInt,
  }),
  sampling: z.looseObject({ steps: positiveInt, guidance_scale: z.number().min(0) }),
  /** Default: only `baseline`, which takes every knob's default (dense, fp32, Euler with the config's sampling). */
  profiles: z.record(z.string(), ProfileSchema).default({ baseline: {} }),
});
export type ModelConfig = z.infer<typeof ModelConfigSchema>;

export interface ModelInfo {
  dir: string;
  config: ModelConfig;
  /** Line i of vocab.txt is token id i; 0 is `<pad>`, 1 is `<bos>`. */
  vocab: string[];
  /** Whether student.safetensors is present (profiles with `weights: student` need it). */
  hasStudent: boolean;
}

export async function readModelInfo(dir: string): Promise<ModelInfo> {
  const isDir = await stat(dir).then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (!isDir) {
    throw new PipelineError("E_MODEL_NOT_FOUND", `model directory ${dir} does not exist (pass --model DIR)`);
  }
  const configPath = join(dir, "config.json");
  if (!existsSync(configPath)) {
    throw new PipelineError(
      "E_MODEL_NOT_FOUND",
      `${dir} is not a model directory: it has no config.json (docs/MODEL.md lists a model's files)`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(configPath, "utf8"));
  } catch (err) {
    throw new PipelineError("E_MODEL_FORMAT", `${configPath}: ${(err as Error).message}`);
  }
  const parsed = ModelConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new PipelineError(
      "E_MODEL_FORMAT",
      `${configPath}: ${issue?.path.join(".") || "(root)"}: ${issue?.message ?? "invalid"}`,
    );
  }
  const vocabPath = join(dir, "vocab.txt");
  let vocab: string[];
  try {
    vocab = (await readFile(vocabPath, "utf8")).split("\n").map((w) => w.trim());
  } catch (err) {
    throw new PipelineError("E_MODEL_FORMAT", `${vocabPath}: ${(err as Error).message}`);
  }
  while (vocab.length > 0 && vocab[vocab.length - 1] === "") vocab.pop();
  if (vocab[0] !== "<pad>" || vocab[1] !== "<bos>") {
    throw new PipelineError("E_MODEL_FORMAT", `${vocabPath}: lines 0 and 1 must be <pad> and <bos>`);
  }
  return { dir, config: parsed.data, vocab, hasStudent: existsSync(join(dir, "student.safetensors")) };
}

/** The prompt's words as the tokenizer sees them (docs/MODEL.md, Tokenizer). */
export function promptWords(prompt: string): string[] {
  return prompt
    .toLowerCase()
    .replace(/[^a-z0-9 ]/g, " ")
    .split(" ")
    .filter((w) => w.length > 0);
}

/** The words of the vocabulary a prompt may use (without `<pad>` and `<bos>`). */
export function promptVocabulary(info: ModelInfo): string[] {
  return info.vocab.slice(2).filter((w) => w.length > 0);
}

/** Throws E_BAD_REQUEST naming every word the model does not know, or a prompt that is too long. */
export function checkPrompt(info: ModelInfo, field: string, prompt: string): void {
  const words = promptWords(prompt);
  const known = new Set(promptVocabulary(info));
  const unknown = [...new Set(words.filter((w) => !known.has(w)))];
  if (unknown.length > 0) {
    const list = unknown.map((w) => `'${w}'`).join(", ");
    throw new PipelineError(
      "E_BAD_REQUEST",
      `${field}: ${unknown.length === 1 ? "word" : "words"} ${list} not in the vocabulary of ${info.config.name} ` +
        `(\`framefleet vocab --model ${info.dir}\` lists the ${known.size} words it knows)`,
    );
  }
  const max = info.config.text.max_tokens - 1;
  if (words.length > max) {
    throw new PipelineError(
      "E_BAD_REQUEST",
      `${field}: ${words.length} words, ${info.config.name} takes at most ${max}`,
    );
  }
}

/** Frames the VAE turns one latent frame step into: 2 per temporal upsampling stage. */
export function temporalFactor(config: ModelConfig): number {
  return 2 ** config.vae.temporal_upsample.filter(Boolean).length;
}

/** Throws E_BAD_REQUEST when a size is off the model's grid or over its limits. */
export function checkVideoSize(
  info: ModelInfo,
  video: { width: number; height: number; frames: number },
): void {
  const v = info.config.video;
  const name = info.config.name;
  const [pt, ph, pw] = info.config.dit.patch_size;
  const spatial = Math.max(v.spatial_multiple, 8 * ph, 8 * pw);
  for (const [field, value, max, multiple] of [
    ["width", video.width, v.max_width, 8 * pw],
    ["height", video.height, v.max_height, 8 * ph],
  ] as const) {
    const step = Math.max(spatial, multiple);
    if (!Number.isInteger(value) || value < step || value > max || value % step !== 0) {
      throw new PipelineError(
        "E_BAD_REQUEST",
        `video.${field}: must be a multiple of ${step} between ${step} and ${max} for ${name} (got ${value})`,
      );
    }
  }
  const k = temporalFactor(info.config);
  const latentFrames = (video.frames - 1) / k + 1;
  if (
    !Number.isInteger(video.frames) ||
    video.frames < 1 ||
    video.frames > v.max_frames ||
    !Number.isInteger(latentFrames) ||
    latentFrames % pt !== 0
  ) {
    const form = pt === 1 ? `1 + ${k}k` : `1 + ${k}k with 1 + k a multiple of ${pt}`;
    throw new PipelineError(
      "E_BAD_REQUEST",
      `video.frames: must be of the form ${form}, at most ${v.max_frames}, for ${name} (got ${video.frames})`,
    );
  }
}
