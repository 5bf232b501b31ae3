#!/usr/bin/env node
// `npm run bench:native -- [--json] [--quick] [filters]`: runs the built framefleet_bench.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const nativeDir = join(dirname(fileURLToPath(import.meta.url)), "..");
const bench = join(process.env.FRAMEFLEET_NATIVE_BUILD_DIR ?? join(nativeDir, "build"), "framefleet_bench");
if (!existsSync(bench)) {
  console.error(`framefleet: ${bench} is missing; run \`npm run build:native\` first`);
  process.exit(1);
}
const result = spawnSync(bench, process.argv.slice(2), { stdio: "inherit" });
process.exit(result.status ?? 1);
