// Kubernetes-style conditions: one per type, lastTransitionTime moves only when status flips,
// every condition carries the generation it was computed from.
import type { Condition } from "../api/index.ts";

export type ConditionInput = Pick<Condition, "type" | "status" | "reason" | "message">;

/** Returns a new list with `next` set; an unchanged condition keeps its lastTransitionTime. */
export function setCondition(
  conditions: readonly Condition[] | undefined,
  next: ConditionInput,
  observedGeneration: number,
  now: Date = new Date(),
): Condition[] {
  const list = [...(conditions ?? [])];
  const i = list.findIndex((c) => c.type === next.type);
  const prior = i >= 0 ? list[i] : undefined;
  const condition: Condition = {
    ...next,
    message: next.message.slice(0, 32768),
    observedGeneration,
    lastTransitionTime:
      prior && prior.status === next.status
        ? prior.lastTransitionTime
        : now.toISOString().replace(/\.\d+Z$/, "Z"),
  };
  if (i >= 0) list[i] = condition;
  else list.push(condition);
  return list;
}

export function findCondition(
  conditions: readonly Condition[] | undefined,
  type: string,
): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

export const isTrue = (conditions: readonly Condition[] | undefined, type: string): boolean =>
  findCondition(conditions, type)?.status === "True";

/** Deep equality of JSON values, for skipping writes that change nothing. */
export function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === "object") {
    return Object.fromEntries(
      Object.entries(v as Record<string, unknown>)
        .filter(([, x]) => x !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([k, x]) => [k, canonical(x)]),
    );
  }
  return v;
}
