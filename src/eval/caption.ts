// Captions of the tiny-shapes grammar: `a {colour} {shape} moving {direction} on a {background}
// background`. Parsing is strict so that a prompt the evaluator cannot judge fails loudly instead
// of being scored against a guess.
import { promptWords } from "../pipeline/model-dir.ts";
import { backgrounds, colours, directions, type Scene, shapes } from "./vocabulary.ts";

export function formatCaption(scene: Scene): string {
  return `a ${scene.colour} ${scene.shape} moving ${scene.direction} on a ${scene.background} background`;
}

function pick<T extends string>(
  word: string | undefined,
  allowed: readonly T[],
  what: string,
  text: string,
): T {
  if (word !== undefined && (allowed as readonly string[]).includes(word)) return word as T;
  throw new Error(
    `caption "${text}": expected a ${what} (${allowed.join(", ")}) but found ${word === undefined ? "the end" : `"${word}"`}`,
  );
}

/** Applies the tokenizer's normalisation (docs/MODEL.md) before reading the grammar. */
export function parseCaption(text: string): Scene {
  const words = promptWords(text);
  const expectWord = (index: number, word: string): void => {
    if (words[index] !== word) {
      throw new Error(
        `caption "${text}": expected "${word}" as word ${index + 1} of the grammar ` +
          `"a {colour} {shape} moving {direction} on a {background} background"`,
      );
    }
  };
  expectWord(0, "a");
  const colour = pick(words[1], colours, "colour", text);
  const shape = pick(words[2], shapes, "shape", text);
  expectWord(3, "moving");
  const direction = pick(words[4], directions, "direction", text);
  expectWord(5, "on");
  expectWord(6, "a");
  const background = pick(words[7], backgrounds, "background", text);
  expectWord(8, "background");
  if (words.length > 9) {
    throw new Error(`caption "${text}": unexpected words after "background": ${words.slice(9).join(" ")}`);
  }
  return { colour, shape, direction, background };
}
