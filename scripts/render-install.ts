// Renders manifests/install/framefleet.yaml from the Helm chart (defaults, namespace
// framefleet-system), so kubectl users get the same install and the two cannot drift:
// test/integration/chart.test.ts fails when the file differs from what this renders.
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { clusterBinary, repoRoot } from "../test/cluster/control-plane.ts";

export const INSTALL_FILE = join(repoRoot, "manifests", "install", "framefleet.yaml");
export const INSTALL_NAMESPACE = "framefleet-system";

export function renderInstall(): string {
  const result = spawnSync(
    clusterBinary,
    [
      "helm",
      "template",
      "framefleet",
      join(repoRoot, "charts", "framefleet"),
      "--namespace",
      INSTALL_NAMESPACE,
      "--skip-tests",
    ],
    { encoding: "utf8" },
  );
  if (result.status !== 0)
    throw new Error(`helm template failed (run npm run cluster:build first):\n${result.stderr}`);
  const header = [
    "# framefleet for kubectl users: kubectl apply --server-side -f manifests/install/framefleet.yaml",
    "# Generated from charts/framefleet with its default values by `npm run manifests`; do not edit by hand.",
    "---",
    `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${INSTALL_NAMESPACE}\n  labels:\n    pod-security.kubernetes.io/enforce: restricted`,
  ].join("\n");
  return `${header}\n${result.stdout}`;
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split("/").pop() ?? "")) {
  mkdirSync(join(repoRoot, "manifests", "install"), { recursive: true });
  writeFileSync(INSTALL_FILE, renderInstall());
  process.stdout.write(`wrote ${INSTALL_FILE}\n`);
}
