// One validator for the CLI, the operator and the worker: every problem of a document, each with
// its path and what is allowed, worded like `spec.video.frames: must be 1 + 4k (got 32)`.
import { parseAllDocuments } from "yaml";
import type { z } from "zod";
import { API_VERSION, GROUP } from "./common.ts";
import { JOB_KIND, VideoGenerationJobSchema } from "./job.ts";
import { AcceleratedModelSchema, MODEL_KIND } from "./model.ts";

export interface Problem {
  /** Dotted path into the document, e.g. spec.video.frames; empty for the document itself. */
  path: string;
  message: string;
}

export interface DocumentVerdict {
  /** `jobs/<name>`, `models/<name>`, or `document N` when the kind or name is unknown. */
  label: string;
  kind?: string;
  problems: Problem[];
  /** The parsed object with defaults applied, when valid. */
  value?: unknown;
}

const KINDS: Record<string, { short: string; schema: z.ZodType }> = {
  [MODEL_KIND]: { short: "models", schema: AcceleratedModelSchema },
  [JOB_KIND]: { short: "jobs", schema: VideoGenerationJobSchema },
};

function show(value: unknown): string {
  if (value === undefined) return "nothing";
  if (typeof value === "string")
    return JSON.stringify(value.length > 40 ? `${value.slice(0, 37)}...` : value);
  if (Array.isArray(value)) return "a list";
  if (value === null) return "null";
  if (typeof value === "object") return "an object";
  return String(value);
}

function typeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "an object";
  return `a ${typeof value}`;
}

function article(noun: string): string {
  return `${/^[aeiou]/.test(noun) ? "an" : "a"} ${noun}`;
}

function at(doc: unknown, path: readonly PropertyKey[]): unknown {
  let cur: unknown = doc;
  for (const key of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[key];
  }
  return cur;
}

/** Turns one zod issue into a message a user can act on: what was wrong and what is allowed. */
function describeIssue(issue: z.core.$ZodIssue, doc: unknown): Problem[] {
  const got = at(doc, issue.path);
  const path = issue.path.map(String).join(".");
  switch (issue.code) {
    case "invalid_type":
      if (got === undefined) return [{ path, message: `is required (${issue.expected})` }];
      return [
        {
          path,
          message: `must be ${article(issue.expected === "int" ? "integer" : issue.expected)} (got ${typeName(got)})`,
        },
      ];
    case "too_small": {
      if (issue.origin === "string")
        return [
          {
            path,
            message:
              Number(issue.minimum) <= 1
                ? "must not be empty"
                : `must be at least ${issue.minimum} characters`,
          },
        ];
      if (issue.origin === "array") return [{ path, message: `must have at least ${issue.minimum} item(s)` }];
      const op = issue.inclusive === false ? ">" : ">=";
      return [{ path, message: `must be ${op} ${issue.minimum} (got ${show(got)})` }];
    }
    case "too_big": {
      if (issue.origin === "string")
        return [
          {
            path,
            message: `must be at most ${issue.maximum} characters (got ${typeof got === "string" ? got.length : "?"})`,
          },
        ];
      if (issue.origin === "array") return [{ path, message: `must have at most ${issue.maximum} item(s)` }];
      const op = issue.inclusive === false ? "<" : "<=";
      return [{ path, message: `must be ${op} ${issue.maximum} (got ${show(got)})` }];
    }
    case "not_multiple_of":
      return [{ path, message: `must be a multiple of ${issue.divisor} (got ${show(got)})` }];
    case "invalid_value":
      return [{ path, message: `must be one of ${issue.values.map(String).join(", ")} (got ${show(got)})` }];
    case "unrecognized_keys":
      return issue.keys.map((key) => ({
        path: path ? `${path}.${key}` : key,
        message: "unknown field (not part of the API)",
      }));
    case "invalid_format":
      return [
        { path, message: `${issue.message.replace(/^Invalid (string|input): /i, "")} (got ${show(got)})` },
      ];
    case "custom":
      return [{ path, message: issue.message }];
    case "invalid_union":
      return [{ path, message: `does not match any allowed form (got ${show(got)})` }];
    default:
      return [{ path, message: `${issue.message}${got !== undefined ? ` (got ${show(got)})` : ""}` }];
  }
}

/** Validates one parsed document. `index` (1-based) names documents without kind or name. */
export function validateDocument(doc: unknown, index = 1): DocumentVerdict {
  const meta = doc && typeof doc === "object" ? (doc as Record<string, unknown>) : {};
  const kind = typeof meta.kind === "string" ? meta.kind : undefined;
  const name =
    meta.metadata &&
    typeof meta.metadata === "object" &&
    typeof (meta.metadata as Record<string, unknown>).name === "string"
      ? ((meta.metadata as Record<string, unknown>).name as string)
      : undefined;
  const entry = kind ? KINDS[kind] : undefined;
  const label = entry && name ? `${entry.short}/${name}` : `document ${index}`;
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
    return { label, problems: [{ path: "", message: `must be a ${GROUP} object (got ${typeName(doc)})` }] };
  }
  if (!entry) {
    return {
      label,
      kind,
      problems: [
        {
          path: "kind",
          message: `must be one of ${Object.keys(KINDS).join(", ")} (got ${show(kind)})`,
        },
      ],
    };
  }
  if (meta.apiVersion !== API_VERSION) {
    return {
      label,
      kind,
      problems: [{ path: "apiVersion", message: `must be ${API_VERSION} (got ${show(meta.apiVersion)})` }],
    };
  }
  const result = entry.schema.safeParse(doc);
  if (result.success) return { label, kind, problems: [], value: result.data };
  return { label, kind, problems: result.error.issues.flatMap((i) => describeIssue(i, doc)) };
}

/** Parses multi-document YAML and validates every document; YAML errors are problems too. */
export function validateYaml(text: string): DocumentVerdict[] {
  const docs = parseAllDocuments(text);
  const verdicts: DocumentVerdict[] = [];
  let index = 0;
  for (const d of docs) {
    index += 1;
    if (d.errors.length > 0) {
      const err = d.errors[0];
      const line = err?.linePos?.[0];
      verdicts.push({
        label: `document ${index}`,
        problems: [
          {
            path: "",
            message: `malformed YAML${line ? ` at line ${line.line}, column ${line.col}` : ""}: ${err?.message.split("\n")[0] ?? "parse error"}`,
          },
        ],
      });
      continue;
    }
    const value = d.toJS();
    if (value === null || value === undefined) continue;
    verdicts.push(validateDocument(value, index));
  }
  return verdicts;
}

export function formatProblems(verdict: DocumentVerdict): string[] {
  return verdict.problems.map((p) => `${verdict.label}: ${p.path ? `${p.path}: ` : ""}${p.message}`);
}
