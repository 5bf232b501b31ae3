// The controller-manager on the local control plane: a Deployment gets its pods (on the only
// untainted node, since its template has no GPU toleration), and ownerReference garbage
// collection removes the children of a deleted owner, down to their processes.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { useTestCluster, waitFor } from "../support/cluster.ts";

const cluster = await useTestCluster(import.meta.url);
after(() => cluster.cleanup());

interface PodList {
  items: { metadata: { name: string }; spec: { nodeName?: string }; status?: { phase?: string } }[];
}

describe("controllers on the local control plane", () => {
  it("runs a Deployment's pods, off the GPU nodes, and garbage-collects them with their owner", async () => {
    const ns = cluster.namespace;
    await cluster.client.create(`/apis/apps/v1/namespaces/${ns}/deployments`, {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "sleeper" },
      spec: {
        replicas: 3,
        selector: { matchLabels: { app: "sleeper" } },
        template: {
          metadata: { labels: { app: "sleeper" } },
          spec: {
            terminationGracePeriodSeconds: 1,
            containers: [{ name: "main", image: "node:20", args: ["-e", "setInterval(() => {}, 1000)"] }],
          },
        },
      },
    });
    const pods = `/api/v1/namespaces/${ns}/pods?labelSelector=app%3Dsleeper`;
    const running = await waitFor(
      "3 Running pods",
      async () => {
        const list = await cluster.client.get<PodList>(pods);
        const up = list.items.filter((p) => p.status?.phase === "Running");
        return up.length === 3 ? up : undefined;
      },
      45_000,
    );
    for (const pod of running)
      assert.match(pod.spec.nodeName ?? "", /^ff-cpu-\d+$/, `${pod.metadata.name} on a GPU node`);

    await cluster.client.delete(`/apis/apps/v1/namespaces/${ns}/deployments/sleeper`, {
      apiVersion: "v1",
      kind: "DeleteOptions",
      propagationPolicy: "Background",
    });
    await waitFor(
      "the ReplicaSet and pods to be garbage-collected",
      async () => {
        const list = await cluster.client.get<PodList>(pods);
        const sets = await cluster.client.get<PodList>(`/apis/apps/v1/namespaces/${ns}/replicasets`);
        return list.items.length === 0 && sets.items.length === 0 ? true : undefined;
      },
      45_000,
    );
  });
});
