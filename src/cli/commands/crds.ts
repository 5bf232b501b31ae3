import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { renderCrds } from "../../api/index.ts";
import type { Command } from "../main.ts";

const usage = `usage: framefleet crds [--out DIR | --stdout]

Renders the CustomResourceDefinitions from the API schemas.
  --out DIR   write one file per CRD into DIR, removing stale ones (default: crds)
  --stdout    print all CRDs as one multi-document YAML stream`;

export const command: Command = {
  summary: "render the CustomResourceDefinitions from the API schemas",
  async run(args) {
    const { values } = parseArgs({
      args,
      options: {
        out: { type: "string", default: "crds" },
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
    mkdirSync(values.out, { recursive: true });
    for (const name of readdirSync(values.out)) {
      if (name.endsWith(".yaml") && !files.has(name)) rmSync(join(values.out, name));
    }
    for (const [name, text] of files) writeFileSync(join(values.out, name), text);
    process.stdout.write(`wrote ${files.size} CRDs to ${values.out}/\n`);
    return 0;
  },
};
