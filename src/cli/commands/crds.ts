import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { renderCrds } from "../../api/index.ts";
import type { Command } from "../main.ts";

/** Where the CRDs live: the plain install and the Helm chart's copy (a chart cannot read outside itself). */
export const CRD_DIRS = ["crds", "charts/framefleet/files/crds"];

const usage = `usage: framefleet crds [--out DIR]... [--stdout]

Renders the CustomResourceDefinitions from the API schemas.
  --out DIR   write one file per CRD into DIR, removing stale ones; repeatable
              (default: ${CRD_DIRS.join(" and ")})
  --stdout    print all CRDs as one multi-document YAML stream`;

export const command: Command = {
  summary: "render the CustomResourceDefinitions from the API schemas",
  async run(args) {
    const { values } = parseArgs({
      args,
      options: {
        out: { type: "string", multiple: true },
        stdout: { type: "boolean" },
        help: { type: "boolean" },
      },
    });
    if (values.help) {
      process.stdout.write(`${usage}\n`);
      return 0;
    }
    const files = renderCrds();
    if (values.stdout) {
      process.stdout.write([...files.values()].join("---\n"));
      return 0;
    }
    for (const dir of values.out ?? CRD_DIRS) {
      mkdirSync(dir, { recursive: true });
      for (const name of readdirSync(dir)) {
        if (name.endsWith(".yaml") && !files.has(name)) rmSync(join(dir, name));
      }
      for (const [name, text] of files) writeFileSync(join(dir, name), text);
      process.stdout.write(`wrote ${files.size} CRDs to ${dir}/\n`);
    }
    return 0;
  },
};
