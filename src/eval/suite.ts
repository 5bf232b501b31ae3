// The evaluation's prompt suite: seen combinations (those the training data shows) and held-out
// ones (docs/DATASET.md), each prompt generated under several seeds. Prompts are chosen so that
// colours, shapes, directions and backgrounds come up about equally often in each split, and the
// same options always give the same suite.
import { formatCaption } from "./caption.ts";
import { seededRandom, shuffled } from "./random.ts";
import {
  backgrounds,
  colours,
  directions,
  heldOutCombinations,
  isHeldOut,
  type Scene,
  shapes,
} from "./vocabulary.ts";

export const splits = ["seen", "heldOut"] as const;
export type Split = (typeof splits)[number];

export interface EvalCase {
  split: Split;
  scene: Scene;
  prompt: string;
  seed: number;
}

export interface SuiteOptions {
  /** Prompts per split; the held-out split has at most 24 (8 triples on 3 backgrounds). */
  prompts: number;
  /** Seeds per prompt: 1..seeds. */
  seeds: number;
}

/** Every scene the training data may show, and every held-out one, in a fixed shuffled order. */
function scenesOf(split: Split): Scene[] {
  const all: Scene[] = [];
  for (const colour of colours) {
    for (const shape of shapes) {
      for (const direction of directions) {
        if (isHeldOut({ colour, shape, direction }) !== (split === "heldOut")) continue;
        for (const background of backgrounds) all.push({ colour, shape, direction, background });
      }
    }
  }
  return shuffled(all, seededRandom(split === "seen" ? 0x5ee7 : 0x4e1d));
}

/**
 * Greedy balance: each next prompt is the first remaining scene whose attribute values have been
 * used least so far, so any prefix of the suite spreads over the vocabulary.
 */
function balanced(pool: Scene[], count: number): Scene[] {
  const used = new Map<string, number>();
  const cost = (s: Scene) =>
    (used.get(`c:${s.colour}`) ?? 0) +
    (used.get(`s:${s.shape}`) ?? 0) +
    (used.get(`d:${s.direction}`) ?? 0) +
    (used.get(`b:${s.background}`) ?? 0);
  const remaining = [...pool];
  const out: Scene[] = [];
  while (out.length < count && remaining.length > 0) {
    let best = 0;
    for (let i = 1; i < remaining.length; i++) {
      if (cost(remaining[i] as Scene) < cost(remaining[best] as Scene)) best = i;
    }
    const [scene] = remaining.splice(best, 1) as [Scene];
    for (const key of [
      `c:${scene.colour}`,
      `s:${scene.shape}`,
      `d:${scene.direction}`,
      `b:${scene.background}`,
    ]) {
      used.set(key, (used.get(key) ?? 0) + 1);
    }
    out.push(scene);
  }
  return out;
}

export const maxPromptsPerSplit: Readonly<Record<Split, number>> = {
  seen:
    (colours.length * shapes.length * directions.length - heldOutCombinations.length) * backgrounds.length,
  heldOut: heldOutCombinations.length * backgrounds.length,
};

export function buildSuite(options: SuiteOptions): EvalCase[] {
  for (const name of ["prompts", "seeds"] as const) {
    const value = options[name];
    if (!Number.isInteger(value) || value < 1)
      throw new Error(`${name} must be a positive integer, got ${value}`);
  }
  const cases: EvalCase[] = [];
  for (const split of splits) {
    for (const scene of balanced(scenesOf(split), options.prompts)) {
      for (let seed = 1; seed <= options.seeds; seed++) {
        cases.push({ split, scene, prompt: formatCaption(scene), seed });
      }
    }
  }
  return cases;
}
