#!/usr/bin/env node
// Configures and builds native/ with CMake + Ninja into native/build: the addon
// (framefleet_native.node), framefleet_tests and framefleet_bench. Headers come from the local Node
// installation (NODE_INCLUDE_DIR, default /usr/include/node) and node-addon-api; nothing is
// downloaded. FRAMEFLEET_SKIP_NATIVE_BUILD=1 skips the build (the TypeScript loader then explains
// how to build when the addon is needed).
//
// Where CMake finds nvcc (on PATH or through CUDACXX) the build also makes the CUDA engine
// library framefleet_cuda_engine.so beside the addon (docs/CUDA.md "The engine on the GPU");
// FRAMEFLEET_NATIVE_CUDA=0 builds the CPU engine only, FRAMEFLEET_CUDA_ARCHS (e.g. "90;120", the
// worker-cuda image's) sets the CUDA architectures. FRAMEFLEET_NATIVE_BUILD_DIR picks the
// build folder; CMAKE_BUILD_PARALLEL_LEVEL bounds the compile jobs, and extra arguments go to
// CMake (e.g. -DCMAKE_CUDA_ARCHITECTURES=90 -DFF_CUBLAS_ROOT=DIR).
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const nativeDir = join(dirname(fileURLToPath(import.meta.url)), "..");
const buildDir = process.env.FRAMEFLEET_NATIVE_BUILD_DIR ?? join(nativeDir, "build");

if (process.env.FRAMEFLEET_SKIP_NATIVE_BUILD === "1") {
  console.log("native build skipped (FRAMEFLEET_SKIP_NATIVE_BUILD=1)");
  process.exit(0);
}

function fail(message) {
  console.error(`framefleet native build: ${message}`);
  process.exit(1);
}

const nodeInclude = process.env.NODE_INCLUDE_DIR ?? "/usr/include/node";
if (!existsSync(join(nodeInclude, "node_api.h"))) {
  fail(`node_api.h not found in ${nodeInclude}; install Node's headers or set NODE_INCLUDE_DIR`);
}
let addonApiDir;
try {
  addonApiDir = createRequire(import.meta.url)("node-addon-api").include_dir;
} catch {
  fail("node-addon-api is not installed; run npm ci first");
}
addonApiDir = addonApiDir.replace(/^"|"$/g, "");
if (!addonApiDir.startsWith("/")) addonApiDir = join(nativeDir, "..", addonApiDir);

function run(cmd, args) {
  const result = spawnSync("nice", ["-n", "10", cmd, ...args], { stdio: "inherit" });
  if (result.error) fail(`cannot run ${cmd}: ${result.error.message} (install cmake and ninja-build)`);
  if (result.status !== 0) fail(`${cmd} ${args.join(" ")} exited with ${result.status}`);
}

const extra = process.argv.slice(2);
if (process.env.FRAMEFLEET_CUDA_ARCHS) extra.push(`-DCMAKE_CUDA_ARCHITECTURES=${process.env.FRAMEFLEET_CUDA_ARCHS}`);
if (process.env.FRAMEFLEET_NATIVE_CUDA === "0") extra.push("-DFRAMEFLEET_CUDA=OFF");
else if (process.env.FRAMEFLEET_NATIVE_CUDA === "1") extra.push("-DFRAMEFLEET_CUDA=ON");
run("cmake", [
  "-S",
  nativeDir,
  "-B",
  buildDir,
  "-G",
  "Ninja",
  `-DCMAKE_BUILD_TYPE=${process.env.FRAMEFLEET_NATIVE_BUILD_TYPE ?? "Release"}`,
  `-DNODE_INCLUDE_DIR=${nodeInclude}`,
  `-DNODE_ADDON_API_DIR=${addonApiDir}`,
  ...extra,
]);
run("cmake", ["--build", buildDir]);
