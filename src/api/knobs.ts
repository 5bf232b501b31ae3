// The acceleration knobs (DESIGN section 5.3) as they appear in a model's profiles and a job's
// overrides. Every field is optional here: unset means "take it from the profile".
import { z } from "zod";
import { described } from "./common.ts";

export const ATTENTION = ["dense", "sage", "sla"] as const;
export const LINEAR = ["fp32", "bf16", "w8a8"] as const;
export const SAMPLERS = ["euler", "rcm"] as const;
export const WEIGHTS = ["dit", "student"] as const;

/** The few-step sampler runs at most this many steps (its time grid has four angles). */
export const RCM_MAX_STEPS = 4;

export const KnobsSchema = described(
  z.strictObject({
    attention: described(
      z.enum(ATTENTION),
      "Self-attention kernel: dense (fp32 reference), sage (INT8 Q.K^T with per-block scales), sla (sparse-linear attention on sage).",
    ).optional(),
    slaTopK: described(
      z.number().gt(0).lte(1),
      "Fraction of key blocks each query block attends exactly when attention is sla, in (0, 1].",
    ).optional(),
    linear: described(
      z.enum(LINEAR),
      "Linear layers inside transformer blocks: fp32, bf16, or w8a8 (INT8 weights and activations).",
    ).optional(),
    sampler: described(
      z.enum(SAMPLERS),
      "euler: flow-matching Euler with classifier-free guidance; rcm: few-step distilled sampler without guidance (1-4 steps).",
    ).optional(),
    weights: described(
      z.enum(WEIGHTS),
      "Which DiT weights to run: dit (the teacher) or student (the few-step distilled model).",
    ).optional(),
    teaCache: described(
      z.number().min(0).max(1),
      "TeaCache threshold on the accumulated rescaled relative L1 change; 0 turns the cache off.",
    ).optional(),
  }),
  "Per-knob acceleration settings; unset knobs come from the profile.",
);
export type Knobs = z.infer<typeof KnobsSchema>;

export const ProfileSchema = described(
  z.strictObject({
    ...KnobsSchema.shape,
    steps: described(z.number().int().min(1).max(200), "Number of sampling steps.").optional(),
    guidanceScale: described(
      z.number().min(0).max(30),
      "Classifier-free guidance scale; 1 disables the unconditional pass.",
    ).optional(),
  }),
  "An acceleration profile: knobs plus sampling defaults. Unset fields come from the model's config.json.",
);
export type Profile = z.infer<typeof ProfileSchema>;
