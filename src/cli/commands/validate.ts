import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { formatProblems, validateYaml } from "../../api/index.ts";
import type { Command } from "../main.ts";

const usage = `usage: framefleet validate -f FILE [-f FILE ...]

Checks every document of each multi-document YAML file ('-' reads stdin) against the
framefleet API and prints every problem with its path and what is allowed.
Exit status: 0 when all documents are valid, 1 when any is invalid, 2 on usage errors.`;

export const command: Command = {
  summary: "check AcceleratedModel and VideoGenerationJob YAML against the API",
  async run(args) {
    let values: { filename?: string[]; help?: boolean; quiet?: boolean };
    try {
      ({ values } = parseArgs({
        args,
        options: {
          filename: { type: "string", short: "f", multiple: true },
          quiet: { type: "boolean", short: "q" },
          help: { type: "boolean", short: "h" },
        },
      }));
    } catch (err) {
      process.stderr.write(`framefleet validate: ${(err as Error).message}\n${usage}\n`);
      return 2;
    }
    if (values.help) {
      process.stdout.write(`${usage}\n`);
      return 0;
    }
    if (!values.filename?.length) {
      process.stderr.write(`framefleet validate: -f FILE is required\n${usage}\n`);
      return 2;
    }
    let invalid = 0;
    let total = 0;
    for (const file of values.filename) {
      let text: string;
      try {
        text = readFileSync(file === "-" ? 0 : file, "utf8");
      } catch (err) {
        process.stderr.write(
          `framefleet validate: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? err}\n`,
        );
        return 2;
      }
      for (const verdict of validateYaml(text)) {
        total += 1;
        const lines = formatProblems(verdict);
        if (lines.length > 0) {
          invalid += 1;
          process.stdout.write(
            `${lines.map((l) => (values.filename?.length === 1 ? l : `${file}: ${l}`)).join("\n")}\n`,
          );
        } else if (!values.quiet) {
          process.stdout.write(`${verdict.label}: valid\n`);
        }
      }
    }
    if (total === 0) {
      process.stderr.write("framefleet validate: no documents found\n");
      return 1;
    }
    return invalid > 0 ? 1 : 0;
  },
};
