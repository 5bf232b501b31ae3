// Renders the CustomResourceDefinitions from the zod schemas: structural OpenAPI v3 with a
// description on every field, defaults, bounds and the CEL rules attached by `described`.
import { stringify } from "yaml";
import { z } from "zod";
import { GROUP, VERSION } from "./common.ts";
import { JOB_KIND, JOB_PLURAL, JobStatusSchema, VideoGenerationJobSpecSchema } from "./job.ts";
import {
  AcceleratedModelSpecSchema,
  AcceleratedModelStatusSchema,
  MODEL_KIND,
  MODEL_PLURAL,
} from "./model.ts";

type JsonSchema = { [key: string]: unknown };

const SAFE_INT = Number.MAX_SAFE_INTEGER;

/** Converts zod's JSON Schema (draft 2020-12) into the structural subset of OpenAPI v3.0 that CRDs accept. */
export function toStructural(node: JsonSchema): JsonSchema {
  const out: JsonSchema = {};
  for (const [key, value] of Object.entries(node)) {
    switch (key) {
      case "$schema":
      case "propertyNames":
      case "id":
        break;
      case "additionalProperties":
        // Closed objects: the API server prunes unknown fields and strict field validation reports them.
        if (value !== false) out[key] = toStructural(value as JsonSchema);
        break;
      case "properties":
        out[key] = Object.fromEntries(
          Object.entries(value as Record<string, JsonSchema>).map(([k, v]) => [k, toStructural(v)]),
        );
        break;
      case "items":
        out[key] = toStructural(value as JsonSchema);
        break;
      case "minimum":
        if (value !== -SAFE_INT) out[key] = value;
        break;
      case "maximum":
        if (value !== SAFE_INT) out[key] = value;
        break;
      case "exclusiveMinimum":
        out.minimum = value;
        out.exclusiveMinimum = true;
        break;
      case "exclusiveMaximum":
        out.maximum = value;
        out.exclusiveMaximum = true;
        break;
      case "const":
        out.enum = [value];
        break;
      case "anyOf": {
        // Nullable fields: keep the non-null branch, mark nullable.
        const branches = (value as JsonSchema[]).filter((b) => b.type !== "null");
        if (branches.length === 1 && branches[0]) {
          Object.assign(out, toStructural(branches[0]));
          out.nullable = true;
        } else {
          throw new Error(`cannot express a union in a structural schema: ${JSON.stringify(value)}`);
        }
        break;
      }
      default:
        out[key] = value;
    }
  }
  if (typeof out.format === "string" && out.pattern && out.format === "date-time") delete out.pattern;
  if (out.type === "string" && out.format === "uri") delete out.pattern;
  return out;
}

function openApi(schema: z.ZodType): JsonSchema {
  return toStructural(z.toJSONSchema(schema, { io: "input", unrepresentable: "throw" }) as JsonSchema);
}

interface PrinterColumn {
  name: string;
  type: "string" | "integer" | "date" | "number";
  jsonPath: string;
  description: string;
  priority?: number;
}

interface CrdInput {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  spec: z.ZodType;
  status: z.ZodType;
  description: string;
  columns: PrinterColumn[];
  /** The scale subresource, for kinds an external autoscaler may scale. */
  scale?: { specReplicasPath: string; statusReplicasPath: string; labelSelectorPath: string };
}

function renderCrd(input: CrdInput): JsonSchema {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: {
      name: `${input.plural}.${GROUP}`,
      labels: { "app.kubernetes.io/name": "framefleet", "app.kubernetes.io/part-of": "framefleet" },
    },
    spec: {
      group: GROUP,
      names: {
        kind: input.kind,
        listKind: `${input.kind}List`,
        plural: input.plural,
        singular: input.singular,
        shortNames: input.shortNames,
        categories: ["framefleet"],
      },
      scope: "Namespaced",
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: input.scale ? { status: {}, scale: input.scale } : { status: {} },
          additionalPrinterColumns: [
            ...input.columns,
            {
              name: "Age",
              type: "date",
              jsonPath: ".metadata.creationTimestamp",
              description: "Time since creation.",
            },
          ],
          schema: {
            openAPIV3Schema: {
              type: "object",
              description: input.description,
              required: ["spec"],
              properties: {
                apiVersion: {
                  type: "string",
                  description: "Versioned schema of this representation of an object.",
                },
                kind: { type: "string", description: "REST resource this object represents." },
                metadata: { type: "object" },
                spec: openApi(input.spec),
                status: openApi(input.status),
              },
            },
          },
        },
      ],
    },
  };
}

export const CRD_INPUTS: CrdInput[] = [
  {
    kind: MODEL_KIND,
    plural: MODEL_PLURAL,
    singular: "acceleratedmodel",
    shortNames: ["am"],
    spec: AcceleratedModelSpecSchema,
    status: AcceleratedModelStatusSchema,
    scale: {
      specReplicasPath: ".spec.replicas",
      statusReplicasPath: ".status.replicas",
      labelSelectorPath: ".status.selector",
    },
    description:
      "AcceleratedModel is a video-generation model, its acceleration profiles, and the worker pools that serve it.",
    columns: [
      {
        name: "Phase",
        type: "string",
        jsonPath: ".status.phase",
        description: "Summary of the model's state.",
      },
      { name: "Ready", type: "integer", jsonPath: ".status.readyWorkers", description: "Ready workers." },
      {
        name: "Queue",
        type: "integer",
        jsonPath: ".status.queueDepth",
        description: "Queued plus running jobs.",
      },
    ],
  },
  {
    kind: JOB_KIND,
    plural: JOB_PLURAL,
    singular: "videogenerationjob",
    shortNames: ["vgj"],
    spec: VideoGenerationJobSpecSchema,
    status: JobStatusSchema,
    description: "VideoGenerationJob is one text-to-video request, queued and run by a worker of its model.",
    columns: [
      {
        name: "Phase",
        type: "string",
        jsonPath: ".status.phase",
        description: "Summary of the job's state.",
      },
      { name: "Model", type: "string", jsonPath: ".spec.model", description: "The AcceleratedModel." },
      {
        name: "GPU",
        type: "string",
        jsonPath: ".status.assignment.gpuClass",
        description: "GPU class of the worker.",
      },
      {
        name: "Progress",
        type: "integer",
        jsonPath: ".status.progress.percent",
        description: "Percent done.",
      },
      {
        name: "Queue",
        type: "integer",
        jsonPath: ".status.queuePosition",
        description: "Position in the queue.",
        priority: 1,
      },
      {
        name: "Worker",
        type: "string",
        jsonPath: ".status.assignment.worker",
        description: "Worker pod.",
        priority: 1,
      },
    ],
  },
];

/** File name → YAML text of every CRD, as `framefleet crds` writes them. */
export function renderCrds(): Map<string, string> {
  const files = new Map<string, string>();
  for (const input of CRD_INPUTS) {
    const header = "# Generated by `framefleet crds` from src/api; do not edit by hand.\n";
    files.set(`${GROUP}_${input.plural}.yaml`, header + stringify(renderCrd(input), { lineWidth: 0 }));
  }
  return files;
}
