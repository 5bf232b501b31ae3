#!/usr/bin/env node
// Finds every *.test.ts under the given roots (default: src and test) and runs them with node's
// built-in test runner through tsx. Node 20's --test takes no globs, hence this file.
//
// When a test file uses the local control plane (it lives in test/integration or test/e2e, or
// imports test/support/cluster), one cluster is
// started for the whole run before any test file, handed to the tests through
// FRAMEFLEET_KUBECONFIG and FRAMEFLEET_CLUSTER_DIR, and torn down afterwards: on success, on
// failure, and on SIGINT/SIGTERM. With FRAMEFLEET_KUBECONFIG already set, that cluster is used
// as it is and left running.
import { spawn, spawnSync } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";

const roots = process.argv.slice(2).filter((a) => !a.startsWith("-"));
const passThrough = process.argv.slice(2).filter((a) => a.startsWith("-"));

function collect(dir, out) {
  if (dir.endsWith(".test.ts")) {
    out.push(dir);
    return out;
  }
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of entries.sort()) {
    if (name === "node_modules" || name.startsWith(".")) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) collect(path, out);
    else if (name.endsWith(".test.ts")) out.push(path);
  }
  return out;
}

const files = (roots.length ? roots : ["src", "test"]).flatMap((r) => collect(r, []));
if (files.length === 0) {
  console.error("no test files found");
  process.exit(1);
}
const needsCluster = files.some(
  (f) => /(^|\/)test\/(integration|e2e)\//.test(f) || readFileSync(f, "utf8").includes("support/cluster"),
);
const clusterDir = resolve(".framefleet", "test-cluster");
const clusterCli = (...args) =>
  spawnSync(process.execPath, ["--import", "tsx", "test/cluster/cli.ts", ...args, "--dir", clusterDir], {
    stdio: "inherit",
  });
const env = { ...process.env };
let ownCluster = false;
let interrupted = false;
let child;
// Registered before the cluster starts so an interrupt during start-up still reaches `down`.
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    interrupted = true;
    child?.kill(signal);
  });
}
if (needsCluster && !env.FRAMEFLEET_KUBECONFIG) {
  const build = spawnSync(process.execPath, ["scripts/cluster-build.mjs"], { stdio: "inherit" });
  if (build.status !== 0) process.exit(build.status ?? 1);
  ownCluster = true;
  const started = Date.now();
  const up = clusterCli("up", "--nodes", "h100=2,rtx5090=2,cpu=1");
  if (up.status !== 0 || interrupted) {
    clusterCli("down");
    process.exit(interrupted ? 130 : (up.status ?? 1));
  }
  console.log(`test cluster up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  env.FRAMEFLEET_KUBECONFIG = join(clusterDir, "kubeconfig");
  env.FRAMEFLEET_CLUSTER_DIR = clusterDir;
}

child = spawn(
  process.execPath,
  ["--import", "tsx", "--test", "--test-reporter=spec", "--test-concurrency=1", ...passThrough, ...files],
  { stdio: "inherit", env },
);
const code = await new Promise((done) => child.on("close", (status) => done(status ?? 1)));
if (ownCluster) clusterCli("down");
process.exit(interrupted ? 130 : code);
