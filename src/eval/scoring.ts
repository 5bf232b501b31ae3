// From the analyzer's reading of a clip to a verdict per attribute, and from verdicts to the
// accuracies `framefleet eval --json` prints.
import type { ClipAnalysis } from "./analyzer.ts";
import { type EvalCase, type Split, splits } from "./suite.ts";
import type { Scene } from "./vocabulary.ts";

export interface Verdict {
  colour: boolean;
  shape: boolean;
  direction: boolean;
  /** Reported, but not part of `overall`: the prompt's subject is the object and its motion. */
  background: boolean;
  /** Colour, shape and direction all right. */
  overall: boolean;
}

export function judge(analysis: ClipAnalysis, scene: Scene): Verdict {
  const colour = analysis.found && analysis.colour.value === scene.colour;
  const shape = analysis.found && analysis.shape.value === scene.shape;
  const direction = analysis.found && analysis.direction.value === scene.direction;
  return {
    colour,
    shape,
    direction,
    background: analysis.background.value === scene.background,
    overall: colour && shape && direction,
  };
}

/** Fractions in 0..1 of the clips whose attribute was right; all 0 when n is 0. */
export interface SplitScore {
  overall: number;
  colour: number;
  shape: number;
  direction: number;
  background: number;
  n: number;
}

export type ProfileScore = Record<Split, SplitScore>;

const scoredAttributes = ["overall", "colour", "shape", "direction", "background"] as const;

export function scoreVerdicts(verdicts: readonly Verdict[]): SplitScore {
  const n = verdicts.length;
  const fraction = (key: (typeof scoredAttributes)[number]) =>
    n === 0 ? 0 : verdicts.filter((v) => v[key]).length / n;
  return {
    overall: fraction("overall"),
    colour: fraction("colour"),
    shape: fraction("shape"),
    direction: fraction("direction"),
    background: fraction("background"),
    n,
  };
}

export interface CaseResult {
  case: EvalCase;
  verdict: Verdict;
}

export function scoreProfile(results: readonly CaseResult[]): ProfileScore {
  const bySplit = Object.fromEntries(
    splits.map((split) => [
      split,
      scoreVerdicts(results.filter((r) => r.case.split === split).map((r) => r.verdict)),
    ]),
  );
  return bySplit as ProfileScore;
}
