// `framefleet smoke`: submits one small VideoGenerationJob and waits for it to succeed. The Helm
// chart's `helm test` hook runs it; users can run it against any install.
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import {
  API_VERSION,
  GROUP,
  JOB_KIND,
  JOB_PLURAL,
  VERSION,
  type VideoGenerationJob,
} from "../../api/index.ts";
import { isNotFound, KubeClient, Resource } from "../../kube/index.ts";
import type { Command } from "../main.ts";

const usage = `usage: framefleet smoke --model NAME [--namespace NS] [--timeout SECONDS] [--kubeconfig FILE]

Creates a small VideoGenerationJob for the model, waits until it succeeds, prints its output, and
deletes it. Exit status 0 on success, 1 when the job fails or the time runs out, 2 on usage errors.`;

const POLL_MS = 1000;

export const command: Command = {
  summary: "submit a small job and wait for it to succeed (the chart's helm test)",
  async run(args) {
    let values: { model?: string; namespace?: string; timeout?: string; kubeconfig?: string; help?: boolean };
    try {
      ({ values } = parseArgs({
        args,
        options: {
          model: { type: "string" },
          namespace: { type: "string", short: "n" },
          timeout: { type: "string", default: "300" },
          kubeconfig: { type: "string" },
          help: { type: "boolean", short: "h" },
        },
      }));
    } catch (err) {
      process.stderr.write(`framefleet smoke: ${(err as Error).message}\n${usage}\n`);
      return 2;
    }
    if (values.help) {
      process.stdout.write(`${usage}\n`);
      return 0;
    }
    const timeoutSeconds = Number(values.timeout);
    if (!values.model || !Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0) {
      process.stderr.write(`framefleet smoke: --model and a positive --timeout are required\n${usage}\n`);
      return 2;
    }
    const client = KubeClient.fromDefault(values.kubeconfig);
    const namespace = values.namespace ?? process.env.POD_NAMESPACE ?? client.currentNamespace;
    const jobs = new Resource<VideoGenerationJob & { metadata: { name: string } }>(client, {
      group: GROUP,
      version: VERSION,
      plural: JOB_PLURAL,
      namespaced: true,
    });
    const name = `smoke-${randomBytes(3).toString("hex")}`;
    await jobs.create(namespace, {
      apiVersion: API_VERSION,
      kind: JOB_KIND,
      metadata: { name, labels: { "app.kubernetes.io/component": "test" } },
      spec: {
        model: values.model,
        prompt: "a red circle moving right on a black background",
        seed: 1,
        profile: "turbo",
        video: { width: 64, height: 64, frames: 9, fps: 8 },
        priority: 0,
        backoffLimit: 1,
        suspend: false,
        output: { format: "mp4" },
      },
    });
    process.stdout.write(`created ${namespace}/${name}; waiting up to ${timeoutSeconds}s\n`);
    const deadline = Date.now() + timeoutSeconds * 1000;
    let lastPhase = "";
    try {
      while (Date.now() < deadline) {
        const job = await jobs.get(namespace, name);
        const phase = job.status?.phase ?? "Pending";
        if (phase !== lastPhase) {
          process.stdout.write(`${name}: ${phase}${job.status?.message ? ` (${job.status.message})` : ""}\n`);
          lastPhase = phase;
        }
        if (phase === "Succeeded") {
          process.stdout.write(`output: ${JSON.stringify(job.status?.output)}\n`);
          return 0;
        }
        if (phase === "Failed" || phase === "Cancelled") {
          process.stderr.write(
            `framefleet smoke: job ${phase}: ${job.status?.reason}: ${job.status?.message}\n`,
          );
          return 1;
        }
        await new Promise((r) => setTimeout(r, POLL_MS));
      }
      process.stderr.write(`framefleet smoke: job still ${lastPhase} after ${timeoutSeconds}s\n`);
      return 1;
    } finally {
      await jobs.delete(namespace, name).catch((err: unknown) => {
        if (!isNotFound(err)) process.stderr.write(`framefleet smoke: cleanup: ${(err as Error).message}\n`);
      });
      client.close();
    }
  },
};
