// Nearest-prototype choice with a margin-based confidence, shared by every attribute the
// analyzer names (colour, background, shape).

export interface Choice<T> {
  value: T;
  /** 0..1. For nearest(): (second distance - best) / (second + best), 0 = a tie, 1 = exact hit. */
  confidence: number;
  /** How far the measurement is from the chosen value, in the chooser's own units. */
  distance: number;
}

export function nearest<T>(candidates: readonly T[], distance: (c: T) => number): Choice<T> | null {
  let best: T | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  let secondDistance = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const d = distance(c);
    if (d < bestDistance) {
      secondDistance = bestDistance;
      bestDistance = d;
      best = c;
    } else if (d < secondDistance) {
      secondDistance = d;
    }
  }
  if (best === undefined) return null;
  const confidence = Number.isFinite(secondDistance)
    ? secondDistance + bestDistance === 0
      ? 0
      : (secondDistance - bestDistance) / (secondDistance + bestDistance)
    : 1;
  return { value: best, confidence, distance: bestDistance };
}

export function rgbDistance(a: readonly number[], b: readonly number[]): number {
  const dr = (a[0] ?? 0) - (b[0] ?? 0);
  const dg = (a[1] ?? 0) - (b[1] ?? 0);
  const db = (a[2] ?? 0) - (b[2] ?? 0);
  return Math.sqrt(dr * dr + dg * dg + db * db);
}
