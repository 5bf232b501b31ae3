// `framefleet worker`: the process inside a worker pod. The operator's pod template passes every
// argument; the pod's identity comes from the downward API (POD_NAME, POD_NAMESPACE, POD_IP).
import { parseArgs } from "node:util";
import { KubeClient } from "../../kube/index.ts";
import { loadLocalModel, resolveModelDir } from "../../pipeline/local.ts";
import { readModelInfo } from "../../pipeline/model-dir.ts";
import { collectProcessMetrics, logger } from "../../telemetry/index.ts";
import { SyntheticEngine } from "../../worker/synthetic-engine.ts";
import { Worker } from "../../worker/worker.ts";
import type { Command } from "../main.ts";

const HELP = `usage: framefleet worker --model-name NAME (--builtin NAME | --model-dir DIR) [options]

  --model-name NAME      the AcceleratedModel this worker serves
  --gpu-class NAME       GPU class of this worker. Default: cpu
  --builtin NAME         a model shipped with framefleet (models/NAME)
  --model-dir DIR        a model directory (config.json, vocab.txt, safetensors)
  --output-dir DIR       where videos are written. Default: /var/run/framefleet/output
  --lease-seconds N      lease on a running job; renewed every third of it. Default: 30
  --port N               port of /healthz, /readyz, /metrics. Default: 8080
  --engine native|synthetic  synthetic skips the denoiser (load benchmarks). Default:
                         $FRAMEFLEET_WORKER_ENGINE, else native (a model sets it in spec.workers.env)
  --synthetic-step-ms N  time per sampling step of the synthetic engine. Default:
                         $FRAMEFLEET_SYNTHETIC_STEP_MS, else 0
  --kubeconfig FILE      cluster credentials. Default: in-cluster or $KUBECONFIG
Environment: POD_NAME and POD_NAMESPACE (required), POD_IP (listen address), GPUS (devices held).
`;

export const command: Command = {
  summary: "Run a worker: load a model once and generate the jobs assigned to this pod",
  async run(args) {
    const { values } = parseArgs({
      args,
      options: {
        "model-name": { type: "string" },
        "gpu-class": { type: "string", default: "cpu" },
        builtin: { type: "string" },
        "model-dir": { type: "string" },
        "model-url": { type: "string" },
        "model-sha256": { type: "string" },
        "output-dir": { type: "string", default: "/var/run/framefleet/output" },
        "lease-seconds": { type: "string", default: "30" },
        port: { type: "string", default: "8080" },
        engine: { type: "string", default: process.env.FRAMEFLEET_WORKER_ENGINE ?? "native" },
        "synthetic-step-ms": { type: "string", default: process.env.FRAMEFLEET_SYNTHETIC_STEP_MS ?? "0" },
        kubeconfig: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
    if (values.help) {
      process.stdout.write(HELP);
      return 0;
    }
    const fail = (msg: string) => {
      process.stderr.write(`framefleet worker: ${msg}\n`);
      return 2;
    };
    const podName = process.env.POD_NAME;
    const namespace = process.env.POD_NAMESPACE;
    if (!podName || !namespace)
      return fail("POD_NAME and POD_NAMESPACE must be set (the pod template sets them)");
    if (!values["model-name"]) return fail("--model-name is required");
    if (values["model-url"])
      return fail(
        "--model-url: HTTP model sources are not supported by this worker yet; use builtin, hostPath or pvc",
      );
    const dirArg = values["model-dir"] ?? values.builtin;
    if (!dirArg) return fail("one of --builtin or --model-dir is required");
    if (values.engine !== "native" && values.engine !== "synthetic")
      return fail(`--engine must be native or synthetic (got ${values.engine})`);
    const dir = resolveModelDir(dirArg);
    const leaseSeconds = Number(values["lease-seconds"]);
    const port = Number(values.port);
    if (!(leaseSeconds >= 1) || !(port > 0 && port < 65536))
      return fail("--lease-seconds and --port must be positive numbers");
    const synthetic = values.engine === "synthetic";
    collectProcessMetrics();
    const worker = new Worker(KubeClient.fromDefault(values.kubeconfig), {
      podName,
      namespace,
      modelName: values["model-name"],
      gpuClass: values["gpu-class"] ?? "cpu",
      outputDir: values["output-dir"] ?? "/var/run/framefleet/output",
      leaseSeconds,
      port,
      host: process.env.POD_IP || "0.0.0.0",
      devices: values["gpu-class"] === "cpu" ? 0 : Number(process.env.GPUS ?? 1),
      load: async () =>
        synthetic
          ? {
              info: await readModelInfo(dir),
              engine: new SyntheticEngine(Number(values["synthetic-step-ms"]) || 0),
              loadSeconds: 0,
            }
          : loadLocalModel(dir),
    });
    const stopped = new Promise<void>((resolve) => {
      const stop = () => {
        logger.info("SIGTERM: finishing the current step and handing the job back");
        void worker.drain().then(resolve);
      };
      process.once("SIGTERM", stop);
      process.once("SIGINT", stop);
    });
    try {
      await worker.start();
    } catch (err) {
      logger.error({ err: (err as Error).message }, "worker failed to start");
      return 1;
    }
    await stopped;
    setTimeout(() => process.exit(0), 2_000).unref();
    return 0;
  },
};
