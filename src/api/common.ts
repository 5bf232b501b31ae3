// Building blocks shared by both kinds: API identity, conditions, and the one helper that gives a
// schema both its zod check and the CEL rule the API server runs, so the two cannot drift.
import { z } from "zod";

export const GROUP = "framefleet.dev";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;
export const LABEL_PREFIX = `${GROUP}/`;

/** A CEL rule as the API server runs it, plus the same check in TypeScript for `framefleet validate`. */
export interface Rule<T> {
  /** CEL expression evaluated with `self` bound to the value (and `oldSelf` for transition rules). */
  cel: string;
  /**
   * The API server's message: what was wrong and what is allowed. A static message, since CEL
   * message expressions count against the CRD's cost budget; `check` adds the offending value.
   */
  message: string;
  /** Path of the offending field relative to the value, as `.a.b`; reported on both sides. */
  fieldPath?: string;
  /** The check in TypeScript: returns the message when the rule is broken, undefined otherwise. */
  check?: (value: T) => string | undefined;
}

export interface Documented {
  description: string;
}

/**
 * Attaches a description and rules to a schema. The zod side runs `check`, the CRD side gets
 * `x-kubernetes-validations`. Transition rules (with `oldSelf`) have no `check`: only the server
 * sees the old object.
 */
export function described<S extends z.ZodType>(
  schema: S,
  description: string,
  rules: Rule<z.output<S>>[] = [],
): S {
  let out = schema;
  for (const rule of rules) {
    const check = rule.check;
    if (!check) continue;
    const path = rule.fieldPath ? rule.fieldPath.split(".").filter(Boolean) : [];
    out = out.superRefine((value, ctx) => {
      const message = check(value as z.output<S>);
      if (message !== undefined) ctx.addIssue({ code: "custom", message, path }) as never;
    }) as unknown as S;
  }
  const meta: Record<string, unknown> = { description };
  if (rules.length > 0) {
    meta["x-kubernetes-validations"] = rules.map((r) => ({
      rule: r.cel,
      message: r.message,
      ...(r.fieldPath ? { fieldPath: r.fieldPath } : {}),
    }));
  }
  return out.meta(meta) as S;
}

/** DNS-1123 label, as Kubernetes requires for names that become labels or pod names. */
export const dnsLabel = (description: string) =>
  described(
    z
      .string()
      .min(1)
      .max(63)
      .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "must be a DNS-1123 label (lower-case letters, digits, '-')"),
    description,
  );

const DOTDOT = /(^|\/)\.\.(\/|$)/;

/**
 * A relative path inside a volume: no leading '/', no '..' segment. The API server's regular
 * expressions (RE2) have no lookahead, so the segment rule is CEL and the character set a pattern.
 */
export const relativePath = (minLength: number, maxLength: number, description: string) =>
  described(
    z
      .string()
      .min(minLength)
      .max(maxLength)
      .regex(/^[A-Za-z0-9._/-]*$/, "must use only letters, digits, '.', '_', '-' and '/'"),
    description,
    [
      {
        cel: "!self.startsWith('/') && !self.matches('(^|/)[.][.](/|$)')",
        message: "must be a relative path without '..'",
        check: (p) =>
          p.startsWith("/") || DOTDOT.test(p)
            ? `must be a relative path without '..' (got ${JSON.stringify(p)})`
            : undefined,
      },
    ],
  );

export const ConditionStatusSchema = z.enum(["True", "False", "Unknown"]);

export const ConditionSchema = described(
  z.strictObject({
    type: described(z.string().min(1).max(316), "Type of condition in CamelCase, e.g. Ready."),
    status: described(ConditionStatusSchema, "Status of the condition: True, False or Unknown."),
    reason: described(
      z
        .string()
        .min(1)
        .max(1024)
        .regex(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/),
      "Machine-readable CamelCase reason for the condition's last transition.",
    ),
    message: described(z.string().max(32768), "Human-readable details about the last transition."),
    lastTransitionTime: described(
      z.iso.datetime({ offset: true }),
      "When the condition last changed status (RFC 3339).",
    ),
    observedGeneration: described(
      z.number().int().min(0),
      "The .metadata.generation the condition was computed from.",
    ),
  }),
  "A Kubernetes-style condition.",
);
export type Condition = z.infer<typeof ConditionSchema>;

export const conditionsField = (what: string) =>
  described(
    z.array(ConditionSchema).max(16),
    `Latest observations of the ${what}'s state, one per type; see the condition type constants.`,
  );

export const ObjectMetaSchema = described(
  z.looseObject({
    name: described(
      z
        .string()
        .min(1)
        .max(253)
        .regex(
          /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/,
          "must be a DNS-1123 subdomain (lower-case letters, digits, '-', '.')",
        ),
      "Name of the object.",
    ),
    namespace: z.string().optional(),
    labels: z.record(z.string(), z.string()).optional(),
    annotations: z.record(z.string(), z.string()).optional(),
  }),
  "Standard Kubernetes object metadata.",
);

/** Resource quantities such as `2`, `500m`, `8Gi`. */
export const QuantitySchema = z
  .string()
  .regex(
    /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|[KMGTPE]i?|[munk]?)?$/,
    "must be a Kubernetes quantity such as 500m or 8Gi",
  );

export const TolerationSchema = described(
  z.strictObject({
    key: described(z.string().max(316), "Taint key the toleration applies to; empty means all.").optional(),
    operator: described(z.enum(["Exists", "Equal"]), "Exists or Equal (the default).").optional(),
    value: described(z.string().max(63), "Taint value to match when operator is Equal.").optional(),
    effect: described(
      z.enum(["NoSchedule", "PreferNoSchedule", "NoExecute"]),
      "Taint effect to match; empty means all.",
    ).optional(),
    tolerationSeconds: described(
      z.number().int().min(0),
      "How long a NoExecute taint is tolerated before eviction.",
    ).optional(),
  }),
  "A pod toleration, as in the Pod API.",
);
export type Toleration = z.infer<typeof TolerationSchema>;
