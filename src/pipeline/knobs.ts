// Resolves the knobs of one run: the model's profile, then the job's overrides, then defaults.
import { type Knobs, type Profile, RCM_MAX_STEPS } from "../api/knobs.ts";
import { PipelineError } from "./errors.ts";
import type { ModelInfo } from "./model-dir.ts";

/** Every knob set; slaTopK only when attention is sla. */
export type ResolvedKnobs = Required<Omit<Profile, "slaTopK">> & Pick<Profile, "slaTopK">;

export interface KnobOverrides {
  acceleration?: Knobs;
  steps?: number;
  guidanceScale?: number;
}

/** Used when attention is sla and neither the profile nor the job names a top-k fraction. */
export const DEFAULT_SLA_TOPK = 0.1;

export function resolveKnobs(info: ModelInfo, profile: string, overrides: KnobOverrides = {}): ResolvedKnobs {
  const profiles = info.config.profiles;
  const base = profiles[profile];
  if (!base) {
    throw new PipelineError(
      "E_BAD_REQUEST",
      `profile: '${profile}' is not a profile of ${info.config.name} (allowed: ${Object.keys(profiles).join(", ")})`,
    );
  }
  const merged: Profile = { ...base, ...definedOnly(overrides.acceleration ?? {}) };
  if (overrides.steps !== undefined) merged.steps = overrides.steps;
  if (overrides.guidanceScale !== undefined) merged.guidanceScale = overrides.guidanceScale;
  const sampler = merged.sampler ?? "euler";
  const knobs: ResolvedKnobs = {
    weights: merged.weights ?? "dit",
    sampler,
    steps: merged.steps ?? info.config.sampling.steps,
    // The few-step sampler has no unconditional pass: guidance is 1 by construction.
    guidanceScale: sampler === "rcm" ? 1 : (merged.guidanceScale ?? info.config.sampling.guidance_scale),
    attention: merged.attention ?? "dense",
    linear: merged.linear ?? "fp32",
    teaCache: merged.teaCache ?? 0,
  };
  if (knobs.attention === "sla") knobs.slaTopK = merged.slaTopK ?? DEFAULT_SLA_TOPK;
  if (knobs.sampler === "rcm" && knobs.steps > RCM_MAX_STEPS) {
    throw new PipelineError(
      "E_BAD_REQUEST",
      `sampling.steps: the rcm sampler runs 1 to ${RCM_MAX_STEPS} steps (got ${knobs.steps})`,
    );
  }
  if (knobs.weights === "student" && !info.hasStudent) {
    throw new PipelineError(
      "E_BAD_REQUEST",
      `weights: student needs student.safetensors, which ${info.dir} lacks (use a profile with weights: dit)`,
    );
  }
  return knobs;
}

/** Network evaluations a run makes when TeaCache skips none: two per Euler step under CFG. */
export function plannedNfe(knobs: ResolvedKnobs): number {
  const passes = knobs.sampler === "euler" && knobs.guidanceScale !== 1 ? 2 : 1;
  return knobs.steps * passes;
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
