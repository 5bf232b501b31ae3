// One operator process: informers on models, jobs and worker pods; a work queue per reconciler;
// the dispatcher; all of it started only while this process holds the leader Lease (a standby
// keeps nothing but its candidacy). /metrics, /healthz and /readyz are served by every replica.
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { EventRecorder, Informer, type KubeClient, LeaderElector, WorkQueue } from "../kube/index.ts";
import { apiRequests, logger, reconcileErrors } from "../telemetry/index.ts";
import type { Context, OperatorSettings } from "./context.ts";
import { keyOf } from "./context.ts";
import { Dispatcher } from "./dispatcher.ts";
import { JobController, POSITION_REFRESH_MS } from "./job-controller.ts";
import { COMPONENT_LABEL, kinds, MODEL_LABEL } from "./kinds.ts";
import { ModelController } from "./model-controller.ts";
import { WORKER_COMPONENT } from "./podtemplate.ts";
import { PoolController } from "./pool-controller.ts";

export interface OperatorHandle {
  /** Resolves when the operator stops (leadership lost or shutdown). */
  done: Promise<void>;
  isLeader(): boolean;
  stop(): Promise<void>;
}

/** Reconciles run concurrently across keys (default 4 per queue), never two for one key. */
const WORKERS_PER_QUEUE = 4;

/** Runs the controllers until `signal` aborts. */
async function lead(
  client: KubeClient,
  settings: OperatorSettings,
  identity: string,
  signal: AbortSignal,
): Promise<void> {
  const k = kinds(client);
  const ns = settings.config.watchNamespaces.length === 1 ? settings.config.watchNamespaces[0] : undefined;
  const log = logger.child({ identity });
  const onError = (what: string) => (err: unknown) =>
    log.warn({ err: String(err) }, `${what} watch restarting`);
  const ctx: Context = {
    ...settings,
    client,
    kinds: k,
    log,
    recorder: new EventRecorder(client, "framefleet-operator", identity, (err) =>
      log.debug({ err: String(err) }, "event not recorded"),
    ),
    models: new Informer(k.models, { namespace: ns, onError: onError("models") }),
    jobs: new Informer(k.jobs, { namespace: ns, onError: onError("jobs") }),
    pods: new Informer(k.pods, {
      namespace: ns,
      labelSelector: `${COMPONENT_LABEL}=${WORKER_COMPONENT}`,
      onError: onError("pods"),
    }),
  };
  const dispatcher = new Dispatcher(ctx);
  const pools = new PoolController(ctx, dispatcher);
  const modelController = new ModelController(ctx, dispatcher, (key) => pools.noCapacity(key));
  const jobController = new JobController(ctx, dispatcher);
  const queue = (name: string) =>
    new WorkQueue({
      name,
      onError: (key, err, retries) => {
        reconcileErrors.inc({ controller: name });
        log.warn(
          { key, controller: name, retries, err: String(err) },
          "reconcile failed; retrying with backoff",
        );
      },
    });
  const modelQueue = queue("model");
  const poolQueue = queue("autoscaler");
  const jobQueue = queue("job");
  const watched = (namespace: string | undefined) =>
    settings.config.watchNamespaces.length === 0 || settings.config.watchNamespaces.includes(namespace ?? "");
  const modelChanged = (key: string) => {
    modelQueue.add(key);
    poolQueue.add(key);
  };
  ctx.models.on({
    add: (m) => {
      if (!watched(m.metadata.namespace)) return;
      modelChanged(keyOf(m));
      for (const j of ctx.jobs.list())
        if (j.metadata.namespace === m.metadata.namespace && j.spec.model === m.metadata.name)
          jobQueue.add(keyOf(j));
    },
    update: (m, old) => {
      if (!watched(m.metadata.namespace)) return;
      modelChanged(keyOf(m));
      if (JSON.stringify(m.status?.conditions) !== JSON.stringify(old.status?.conditions)) {
        for (const j of ctx.jobs.list())
          if (j.metadata.namespace === m.metadata.namespace && j.spec.model === m.metadata.name)
            jobQueue.add(keyOf(j));
      }
      dispatcher.kick();
    },
    delete: (m) => {
      modelChanged(keyOf(m));
      for (const j of ctx.jobs.list())
        if (j.metadata.namespace === m.metadata.namespace && j.spec.model === m.metadata.name)
          jobQueue.add(keyOf(j));
    },
  });
  const jobChanged = (j: { metadata: { namespace?: string; name?: string }; spec: { model: string } }) => {
    if (!watched(j.metadata.namespace)) return;
    jobQueue.add(keyOf(j));
    modelChanged(`${j.metadata.namespace}/${j.spec.model}`);
    dispatcher.kick();
  };
  ctx.jobs.on({ add: jobChanged, update: jobChanged, delete: jobChanged });
  const podChanged = (p: { metadata: { namespace?: string; labels?: Record<string, string> } }) => {
    const model = p.metadata.labels?.[MODEL_LABEL];
    if (!model || !watched(p.metadata.namespace)) return;
    modelChanged(`${p.metadata.namespace}/${model}`);
    for (const j of ctx.jobs.list()) {
      if (
        j.status?.phase === "Running" &&
        j.metadata.namespace === p.metadata.namespace &&
        j.spec.model === model
      )
        jobQueue.add(keyOf(j));
    }
    dispatcher.kick();
  };
  ctx.pods.on({ add: podChanged, update: podChanged, delete: podChanged });

  for (const inf of [ctx.models, ctx.jobs, ctx.pods]) inf.start();
  await Promise.all([ctx.models.waitForSync(), ctx.jobs.waitForSync(), ctx.pods.waitForSync()]);
  log.info(
    { models: ctx.models.list().length, jobs: ctx.jobs.list().length, workers: ctx.pods.list().length },
    "caches synced; reconciling",
  );
  const running = [
    modelQueue.run(WORKERS_PER_QUEUE, (key) => modelController.reconcile(key)),
    poolQueue.run(WORKERS_PER_QUEUE, (key) => pools.reconcile(key)),
    jobQueue.run(WORKERS_PER_QUEUE, (key) => jobController.reconcile(key)),
  ];
  dispatcher.kick();
  const positions = setInterval(() => void jobController.refreshPositions(), POSITION_REFRESH_MS);
  await new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
  dispatcher.stop();
  clearInterval(positions);
  for (const q of [modelQueue, poolQueue, jobQueue]) q.shutDown();
  await Promise.all([...running, ctx.models.stop(), ctx.jobs.stop(), ctx.pods.stop()]);
}

export function startOperator(
  client: KubeClient,
  settings: OperatorSettings,
  opts: { identity?: string; namespace?: string } = {},
): OperatorHandle {
  client.onRequest((verb, resource, code) => apiRequests.inc({ verb, resource, code: String(code) }));
  // Unique per process, as client-go's: a restarted container of the same pod must campaign
  // anew instead of renewing the lease its dead predecessor held.
  const identity = opts.identity ?? `${process.env.POD_NAME ?? hostname()}_${randomUUID().slice(0, 8)}`;
  const shutdown = new AbortController();
  const le = settings.config.leaderElection;
  let leading = false;
  let done: Promise<void>;
  if (!le.enabled) {
    leading = true;
    done = lead(client, settings, identity, shutdown.signal);
  } else {
    const elector = new LeaderElector(kinds(client).leases, {
      namespace: le.namespace ?? opts.namespace ?? process.env.POD_NAMESPACE ?? "default",
      name: le.leaseName,
      identity,
      leaseDurationMs: le.leaseDurationSeconds * 1000,
      renewDeadlineMs: le.renewDeadlineSeconds * 1000,
      retryPeriodMs: le.retryPeriodSeconds * 1000,
      onStartedLeading: (signal) => {
        leading = true;
        logger.info({ identity }, "started leading");
        const stopped = new AbortController();
        signal.addEventListener("abort", () => stopped.abort(), { once: true });
        shutdown.signal.addEventListener("abort", () => stopped.abort(), { once: true });
        leadership = lead(client, settings, identity, stopped.signal).catch((err) => {
          logger.error({ err }, "controllers failed");
        });
      },
      onStoppedLeading: () => {
        leading = false;
        logger.info({ identity }, "stopped leading");
      },
      onNewLeader: (holder) => logger.info({ identity, leader: holder }, "leader observed"),
      onError: (err) => logger.warn({ err: String(err) }, "leader election request failed"),
    });
    let leadership: Promise<void> = Promise.resolve();
    done = elector.run(shutdown.signal).then(() => leadership);
  }
  return {
    done,
    isLeader: () => leading,
    async stop() {
      shutdown.abort();
      await done;
    },
  };
}
