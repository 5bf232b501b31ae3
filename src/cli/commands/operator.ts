// `framefleet operator`: runs the controllers (leader-elected) against the cluster in the
// kubeconfig or the in-cluster service account.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { parse as parseYaml } from "yaml";
import { OperatorConfigSchema } from "../../api/index.ts";
import { KubeClient } from "../../kube/index.ts";
import { serveProbes } from "../../operator/http.ts";
import { startOperator } from "../../operator/operator.ts";
import { DEFAULT_RETRY } from "../../operator/queue.ts";
import { collectProcessMetrics, logger } from "../../telemetry/index.ts";
import type { Command } from "../main.ts";

const HELP = `usage: framefleet operator [options]

  --config FILE              operator configuration (YAML). Default: the YAML in $FRAMEFLEET_CONFIG
                             (the Helm chart sets it from its ConfigMap), else built-in defaults
  --kubeconfig FILE          cluster credentials. Default: $KUBECONFIG, ~/.kube/config, or in-cluster
  --namespace NS             namespace of the leader Lease. Default: config, $POD_NAMESPACE, then default
  --identity NAME            leader-election identity. Default: $POD_NAME (or the host) plus a random suffix
  --retry-backoff-seconds N  first retry delay of a failed attempt, doubling to 6 min. Default: 10
  --worker-arg ARG           extra argument for every worker pod (repeatable), e.g. --worker-arg=--engine=synthetic
`;

export const command: Command = {
  summary: "Run the operator: model and job controllers, dispatcher and autoscaler",
  async run(args) {
    const { values } = parseArgs({
      args,
      options: {
        config: { type: "string" },
        kubeconfig: { type: "string" },
        namespace: { type: "string" },
        identity: { type: "string" },
        "retry-backoff-seconds": { type: "string" },
        "worker-arg": { type: "string", multiple: true },
        help: { type: "boolean", short: "h" },
      },
    });
    if (values.help) {
      process.stdout.write(HELP);
      return 0;
    }
    let raw: unknown = {};
    if (!values.config && process.env.FRAMEFLEET_CONFIG) {
      try {
        raw = parseYaml(process.env.FRAMEFLEET_CONFIG) ?? {};
      } catch (err) {
        process.stderr.write(
          `framefleet operator: FRAMEFLEET_CONFIG is not YAML: ${(err as Error).message}\n`,
        );
        return 2;
      }
    } else if (values.config) {
      try {
        raw = parseYaml(readFileSync(values.config, "utf8")) ?? {};
      } catch (err) {
        process.stderr.write(
          `framefleet operator: cannot read --config ${values.config}: ${(err as Error).message}\n`,
        );
        return 2;
      }
    }
    const parsed = OperatorConfigSchema.safeParse(raw);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        process.stderr.write(
          `framefleet operator: ${values.config}: ${issue.path.join(".")}: ${issue.message}\n`,
        );
      }
      return 2;
    }
    const config = parsed.data;
    const retryBase = values["retry-backoff-seconds"] ? Number(values["retry-backoff-seconds"]) : undefined;
    if (retryBase !== undefined && !(retryBase > 0)) {
      process.stderr.write("framefleet operator: --retry-backoff-seconds must be a positive number\n");
      return 2;
    }
    const client = KubeClient.fromDefault(values.kubeconfig);
    collectProcessMetrics();
    const handle = startOperator(
      client,
      {
        config,
        retry: retryBase ? { ...DEFAULT_RETRY, baseMs: retryBase * 1000 } : DEFAULT_RETRY,
        workerArgs: values["worker-arg"] ?? [],
        fieldManager: "framefleet-operator",
      },
      { identity: values.identity, namespace: values.namespace },
    );
    const host = process.env.POD_IP ?? "0.0.0.0";
    const servers = await Promise.all([
      serveProbes(config.metricsPort, host, { healthy: () => true, ready: () => true }),
      ...(config.healthPort !== config.metricsPort
        ? [serveProbes(config.healthPort, host, { healthy: () => true, ready: () => true })]
        : []),
    ]);
    let stopping = false;
    const stop = () => {
      stopping = true;
      logger.info("shutting down; releasing the leader lease");
      void handle.stop();
    };
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
    await handle.done;
    for (const s of servers) s.close();
    client.close();
    // Leadership lost without a shutdown request: exit non-zero so the pod restarts as a fresh candidate.
    const code = stopping ? 0 : 1;
    // A handle left open must not keep a replica that lost its lease alive.
    setTimeout(() => process.exit(code), 2_000).unref();
    return code;
  },
};
