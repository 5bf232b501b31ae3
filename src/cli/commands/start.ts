import { join } from "node:path";
import { REPO_ROOT } from "../../pipeline/local.ts";
import type { Command } from "../main.ts";
import { generate } from "./generate.ts";

/** The job `npm start` generates: the bundled model's turbo profile. */
export const START_EXAMPLE = join(REPO_ROOT, "manifests", "examples", "job-turbo.yaml");

export const command: Command = {
  summary: "generate the example job with the bundled model and print where the files are (npm start)",
  run(args) {
    if (args.includes("--help") || args.includes("-h")) {
      process.stdout.write(
        `usage: framefleet start [generate options]\n\nRuns \`framefleet generate -f ${START_EXAMPLE} --out out\`;\n` +
          "further options are passed on (see `framefleet generate --help`).\n",
      );
      return Promise.resolve(0);
    }
    return generate(["-f", START_EXAMPLE, "--out", "out", ...args]);
  },
};
