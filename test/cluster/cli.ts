// npm run cluster -- up [--nodes h100=2,rtx5090=2,cpu=1] [--dir DIR] | down [--dir DIR] | status [--dir DIR]
import { parseArgs } from "node:util";
import { defaultClusterDir, defaultNodes, down, isUp, readState, up } from "./control-plane.ts";
import { KubeClient } from "./kube-client.ts";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    nodes: { type: "string", default: defaultNodes },
    dir: { type: "string", default: defaultClusterDir },
    kubeconfig: { type: "string" },
  },
});
const command = positionals[0] ?? "status";
const log = (line: string) => console.log(`cluster: ${line}`);

async function status(): Promise<number> {
  const state = await isUp(values.dir);
  if (!state) {
    console.log(readState(values.dir) ? "cluster: not healthy (run `down`, then `up`)" : "cluster: down");
    return 3;
  }
  const client = KubeClient.fromKubeconfig(state.kubeconfig);
  try {
    const nodes = await client.get<{
      items: {
        metadata: { name: string; labels?: Record<string, string> };
        status?: { allocatable?: Record<string, string>; conditions?: { type: string; status: string }[] };
      }[];
    }>("/api/v1/nodes");
    console.log(
      `cluster: up since ${state.startedAt}\n  server     ${state.server}\n  kubeconfig ${state.kubeconfig}`,
    );
    console.log(
      `  pids       ${Object.entries(state.pids)
        .map(([k, v]) => `${k}=${v}`)
        .join(" ")}`,
    );
    for (const n of nodes.items) {
      const ready =
        n.status?.conditions?.find((c) => c.type === "Ready")?.status === "True" ? "Ready" : "NotReady";
      const gpus = n.status?.allocatable?.["nvidia.com/gpu"] ?? "0";
      const product = n.metadata.labels?.["nvidia.com/gpu.product"] ?? "-";
      console.log(`  node ${n.metadata.name.padEnd(14)} ${ready.padEnd(9)} gpus=${gpus} ${product}`);
    }
    return 0;
  } finally {
    client.close();
  }
}

async function main(): Promise<number> {
  switch (command) {
    case "up":
      await up({ dir: values.dir, nodes: values.nodes, kubeconfig: values.kubeconfig, log });
      return status();
    case "down":
      await down({ dir: values.dir, log });
      return 0;
    case "status":
      return status();
    default:
      console.error(`unknown command ${command}: use up, down or status`);
      return 2;
  }
}

try {
  process.exitCode = await main();
} catch (err) {
  console.error(`cluster: ${err instanceof Error ? err.message : err}`);
  process.exitCode = 1;
}
