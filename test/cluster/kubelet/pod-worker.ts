// One pod on a virtual node: its containers run as local process groups, and its status
// (phase, conditions, container states, exit codes, restart counts, readiness) is reported
// back to the API server the way the kubelet reports it.
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { isNotFound, type KubeClient, KubeError } from "../kube-client.ts";
import { killGroup } from "../process-group.ts";
import { ConfigSource, containerEnv } from "./env.ts";
import { type ImageEntry, NoEntrypointError, resolveCommand } from "./images.ts";
import { startProber } from "./probes.ts";
import type { Container, ContainerState, ContainerStatus, Pod, PodCondition } from "./types.ts";
import { mountRewriter, type PreparedVolumes, prepareVolumes, requestToken } from "./volumes.ts";

export interface KubeletContext {
  client: KubeClient;
  /** API server URL and CA file, written into each pod's kubeconfig. */
  server: string;
  caFile: string;
  stateDir: string;
  images: ImageEntry[];
  imageMapPath: string;
  gpus: GpuAllocator;
  log: (line: string) => void;
}

/** Hands out GPU indices per node so each GPU pod gets distinct NVIDIA_VISIBLE_DEVICES. */
export class GpuAllocator {
  private readonly used = new Map<string, Set<number>>();
  constructor(private readonly capacity: Map<string, number>) {}

  allocate(node: string, count: number): number[] {
    const used = this.used.get(node) ?? new Set<number>();
    this.used.set(node, used);
    const free = [...Array(this.capacity.get(node) ?? 0).keys()].filter((i) => !used.has(i));
    if (free.length < count) {
      throw new Error(`node ${node} has ${free.length} free nvidia.com/gpu, pod needs ${count}`);
    }
    const picked = free.slice(0, count);
    for (const i of picked) used.add(i);
    return picked;
  }

  release(node: string, indices: number[]): void {
    for (const i of indices) this.used.get(node)?.delete(i);
  }
}

const maxBackoffMs = 30_000;
const tokenRefreshMs = 30 * 60_000;

class ContainerRun {
  restartCount = 0;
  state: ContainerState = { waiting: { reason: "ContainerCreating" } };
  lastState: ContainerState = {};
  ready = false;
  everRan = false;
  /** No further restarts will happen: the container's final state is in `state`. */
  done = false;
  child?: ChildProcess;
  exited?: Promise<void>;
  stopProbes: (() => void)[] = [];
  backoff?: NodeJS.Timeout;
  constructor(readonly container: Container) {}
}

export class PodWorker {
  private pod: Pod;
  private readonly podDir: string;
  private readonly init: ContainerRun[];
  private readonly runs: ContainerRun[];
  private volumes?: PreparedVolumes;
  private gpuIndices: number[] = [];
  private failure?: { reason: string; message: string };
  private initialized = false;
  private terminating = false;
  private startTime = new Date().toISOString();
  private readonly transitions = new Map<string, { status: string; at: string }>();
  private lastSent = "";
  private flushing?: Promise<void>;
  private dirty = false;
  private tokenTimer?: NodeJS.Timeout;
  private retryTimer?: NodeJS.Timeout;
  /** Resolves when the pod's processes are gone after terminate(). */
  finished?: Promise<void>;

  constructor(
    private readonly ctx: KubeletContext,
    pod: Pod,
  ) {
    this.pod = pod;
    const m = pod.metadata;
    this.podDir = join(ctx.stateDir, "pods", `${m.namespace}_${m.name}_${m.uid}`);
    this.init = (pod.spec.initContainers ?? []).map((c) => new ContainerRun(c));
    this.runs = pod.spec.containers.map((c) => new ContainerRun(c));
    if (pod.status?.startTime) this.startTime = pod.status.startTime;
  }

  get key(): string {
    return `${this.pod.metadata.namespace}/${this.pod.metadata.name}`;
  }

  update(pod: Pod): void {
    this.pod = pod;
  }

  start(): void {
    mkdirSync(join(this.podDir, "logs"), { recursive: true });
    this.markDirty();
    void this.prepareAndRun();
  }

  private async prepareAndRun(): Promise<void> {
    if (this.terminating) return;
    try {
      // Every container must be runnable before any starts: a pod whose image has no local
      // entrypoint fails as a whole, with the reason on the pod and on the container.
      for (const run of [...this.init, ...this.runs])
        resolveCommand(run.container, this.ctx.images, {}, this.ctx.imageMapPath);
      const config = new ConfigSource(this.ctx.client, this.pod.metadata.namespace);
      this.volumes ??= await prepareVolumes(
        { client: this.ctx.client, config, podDir: this.podDir, pvcRoot: join(this.ctx.stateDir, "pvcs") },
        this.pod,
      );
      if (this.gpuIndices.length === 0) {
        this.gpuIndices = this.ctx.gpus.allocate(this.pod.spec.nodeName ?? "", gpuRequest(this.pod));
      }
      await this.writeKubeconfig();
      this.tokenTimer ??= setInterval(() => void this.refreshTokens(), tokenRefreshMs);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (err instanceof NoEntrypointError) {
        for (const run of [...this.init, ...this.runs])
          run.state = { waiting: { reason: err.reason, message } };
        this.fail(err.reason, message);
        return;
      }
      // ConfigMaps, Secrets or claims may appear later: retry like the kubelet does.
      for (const run of this.runs) run.state = { waiting: { reason: "CreateContainerConfigError", message } };
      this.ctx.log(`${this.key}: ${message} (retrying)`);
      this.markDirty();
      this.retryTimer = setTimeout(() => void this.prepareAndRun(), 2000);
      return;
    }
    this.runNextInit();
  }

  private fail(reason: string, message: string): void {
    this.failure = { reason, message };
    this.ctx.log(`${this.key}: ${reason}: ${message}`);
    this.markDirty();
  }

  private runNextInit(): void {
    const next = this.init.find((r) => !r.done);
    if (!next) {
      this.initialized = true;
      for (const run of this.runs) void this.launch(run);
      return;
    }
    if (!next.child) void this.launch(next);
  }

  private async launch(run: ContainerRun): Promise<void> {
    if (this.terminating) return;
    const c = run.container;
    try {
      const { mounts, rewrite } = mountRewriter(c, this.volumes?.paths ?? new Map());
      const base = this.baseEnv(mounts);
      const own = await containerEnv(
        this.pod,
        c,
        new ConfigSource(this.ctx.client, this.pod.metadata.namespace),
        base,
      );
      const env: Record<string, string> = {};
      for (const [k, v] of Object.entries({ ...base, ...own })) env[k] = rewrite(v);
      const { argv, workingDir } = resolveCommand(c, this.ctx.images, env, this.ctx.imageMapPath);
      const cwd = c.workingDir ? rewrite(c.workingDir) : (workingDir ?? this.podDir);
      if (!existsSync(cwd)) mkdirSync(cwd, { recursive: true });
      const [cmd, ...args] = argv.map(rewrite);
      const logFd = openSync(join(this.podDir, "logs", `${c.name}.log`), "a");
      const startedAt = new Date().toISOString();
      const child = spawn(cmd as string, args, { cwd, env, detached: true, stdio: ["ignore", logFd, logFd] });
      closeSync(logFd);
      run.child = child;
      run.everRan = true;
      run.exited = new Promise<void>((resolve) => {
        // A failed spawn may report both "error" and "exit": the first one settles the container.
        let settled = false;
        const settle = (report: () => void) => {
          if (settled) return;
          settled = true;
          if (child.pid) this.unregisterPid(child.pid);
          report();
          resolve();
        };
        child.on("error", (err) =>
          settle(() =>
            this.onExit(run, 128, null, startedAt, "StartError", `failed to start ${cmd}: ${err.message}`),
          ),
        );
        child.on("exit", (code, signal) =>
          settle(() => this.onExit(run, code ?? 128 + signalNumber(signal), signal, startedAt)),
        );
      });
      if (child.pid) {
        this.registerPid(child.pid);
        run.state = { running: { startedAt } };
        this.ctx.log(`${this.key}: started ${c.name} (pid ${child.pid}): ${argv.join(" ")}`);
        this.startProbes(run, env, cwd);
      }
      this.markDirty();
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      run.state = { waiting: { reason: "CreateContainerConfigError", message } };
      this.markDirty();
      run.backoff = setTimeout(() => void this.launch(run), 2000);
    }
  }

  private startProbes(run: ContainerRun, env: Record<string, string>, cwd: string): void {
    const c = run.container;
    run.ready = !c.readinessProbe;
    if (c.readinessProbe) {
      run.stopProbes.push(
        startProber(c, c.readinessProbe, env, cwd, (ok) => {
          run.ready = ok && !!run.state.running;
          this.markDirty();
        }),
      );
    }
    if (c.livenessProbe) {
      run.stopProbes.push(
        startProber(c, c.livenessProbe, env, cwd, (ok) => {
          if (!ok && run.child?.pid) {
            this.ctx.log(`${this.key}: ${c.name} failed its liveness probe, killing it`);
            killGroup(run.child.pid, "SIGKILL");
          }
        }),
      );
    }
  }

  private onExit(
    run: ContainerRun,
    exitCode: number,
    signal: NodeJS.Signals | null,
    startedAt: string,
    reason?: string,
    message?: string,
  ): void {
    for (const stop of run.stopProbes) stop();
    run.stopProbes = [];
    run.child = undefined;
    run.ready = false;
    run.state = {
      terminated: {
        exitCode,
        ...(signal ? { signal: signalNumber(signal) } : {}),
        reason: reason ?? (exitCode === 0 ? "Completed" : "Error"),
        ...(message ? { message } : {}),
        startedAt,
        finishedAt: new Date().toISOString(),
      },
    };
    const isInit = this.init.includes(run);
    const policy = this.pod.spec.restartPolicy ?? "Always";
    const restart =
      !this.terminating &&
      (isInit
        ? exitCode !== 0 && policy !== "Never"
        : policy === "Always" || (policy === "OnFailure" && exitCode !== 0));
    this.ctx.log(`${this.key}: ${run.container.name} exited ${exitCode}${restart ? ", restarting" : ""}`);
    if (!restart) {
      run.done = true;
      if (isInit && exitCode !== 0)
        this.fail("InitContainerFailed", `init container ${run.container.name} exited ${exitCode}`);
      else if (isInit) this.runNextInit();
      this.markDirty();
      if (this.runs.every((r) => r.done) && !this.terminating) this.releaseResources();
      return;
    }
    const delay = Math.min(maxBackoffMs, 1000 * 2 ** run.restartCount);
    run.lastState = run.state;
    run.restartCount++;
    run.state = {
      waiting: {
        reason: "CrashLoopBackOff",
        message: `back-off ${delay / 1000}s restarting failed container`,
      },
    };
    this.markDirty();
    run.backoff = setTimeout(() => void this.launch(run), delay);
  }

  private baseEnv(mounts: Record<string, string>): Record<string, string> {
    const url = new URL(this.ctx.server);
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
      HOME: this.podDir,
      HOSTNAME: this.pod.metadata.name,
      KUBERNETES_SERVICE_HOST: url.hostname,
      KUBERNETES_SERVICE_PORT: url.port,
      FRAMEFLEET_POD_DIR: this.podDir,
      FRAMEFLEET_MOUNTS: JSON.stringify(mounts),
    };
    for (const name of ["LANG", "TZ", "TMPDIR"]) {
      const value = process.env[name];
      if (value) env[name] = value;
    }
    if (this.pod.spec.automountServiceAccountToken !== false)
      env.KUBECONFIG = join(this.podDir, "kubeconfig");
    if (this.gpuIndices.length > 0) env.NVIDIA_VISIBLE_DEVICES = this.gpuIndices.join(",");
    return env;
  }

  /** A kubeconfig for the pod's service account, so RBAC applies to what its processes do. */
  private async writeKubeconfig(): Promise<void> {
    if (this.pod.spec.automountServiceAccountToken === false) return;
    const token = await requestToken(this.ctx.client, this.pod);
    const sa = this.pod.spec.serviceAccountName || "default";
    const ns = this.pod.metadata.namespace;
    const kubeconfig = {
      apiVersion: "v1",
      kind: "Config",
      clusters: [
        {
          name: "framefleet",
          cluster: { server: this.ctx.server, "certificate-authority": this.ctx.caFile },
        },
      ],
      users: [{ name: `system:serviceaccount:${ns}:${sa}`, user: { token } }],
      contexts: [
        {
          name: "pod",
          context: { cluster: "framefleet", user: `system:serviceaccount:${ns}:${sa}`, namespace: ns },
        },
      ],
      "current-context": "pod",
    };
    writeFileSync(join(this.podDir, "kubeconfig"), JSON.stringify(kubeconfig, null, 2), { mode: 0o600 });
  }

  private async refreshTokens(): Promise<void> {
    try {
      await this.writeKubeconfig();
      await this.volumes?.refreshTokens();
    } catch (err) {
      this.ctx.log(`${this.key}: token refresh failed: ${err instanceof Error ? err.message : err}`);
    }
  }

  private registerPid(pid: number): void {
    mkdirSync(join(this.ctx.stateDir, "pids"), { recursive: true });
    writeFileSync(join(this.ctx.stateDir, "pids", String(pid)), this.key);
  }

  private unregisterPid(pid: number): void {
    try {
      unlinkSync(join(this.ctx.stateDir, "pids", String(pid)));
    } catch {}
  }

  private releaseResources(): void {
    if (this.tokenTimer) clearInterval(this.tokenTimer);
    this.tokenTimer = undefined;
    this.ctx.gpus.release(this.pod.spec.nodeName ?? "", this.gpuIndices);
    this.gpuIndices = [];
  }

  /**
   * Stops every container: SIGTERM to each process group, SIGKILL after the grace period.
   * With `deleteFromApi`, then removes the pod object (the kubelet's final, zero-grace delete).
   */
  terminate(graceSeconds: number, deleteFromApi: boolean): Promise<void> {
    if (this.finished) return this.finished;
    this.terminating = true;
    this.finished = (async () => {
      if (this.retryTimer) clearTimeout(this.retryTimer);
      const all = [...this.init, ...this.runs];
      for (const run of all) {
        if (run.backoff) clearTimeout(run.backoff);
        for (const stop of run.stopProbes) stop();
      }
      const live = all.filter((r) => r.child?.pid);
      for (const run of live) killGroup(run.child?.pid as number, "SIGTERM");
      const exited = Promise.all(live.map((r) => r.exited));
      const timeout = new Promise<"timeout">((r) =>
        setTimeout(() => r("timeout"), graceSeconds * 1000).unref(),
      );
      if ((await Promise.race([exited, timeout])) === "timeout") {
        for (const run of live) if (run.child?.pid) killGroup(run.child.pid, "SIGKILL");
        await exited;
      }
      this.releaseResources();
      for (const dir of this.volumes?.ephemeral ?? []) rmSync(dir, { recursive: true, force: true });
      if (!deleteFromApi) return;
      const m = this.pod.metadata;
      try {
        await this.ctx.client.delete(`/api/v1/namespaces/${m.namespace}/pods/${m.name}`, {
          apiVersion: "v1",
          kind: "DeleteOptions",
          gracePeriodSeconds: 0,
          preconditions: { uid: m.uid },
        });
      } catch (err) {
        if (!isNotFound(err) && !(err instanceof KubeError && err.status === 409)) throw err;
      }
    })();
    return this.finished;
  }

  /** Pod status from the containers' states; written only when it changed. */
  private status() {
    const statuses = (runs: ContainerRun[]): ContainerStatus[] =>
      runs.map((r) => ({
        name: r.container.name,
        image: r.container.image ?? "",
        imageID: r.container.image ? `framefleet-process://${r.container.image}` : "",
        ...(r.everRan
          ? { containerID: `framefleet-process://${this.pod.metadata.uid}/${r.container.name}` }
          : {}),
        ready: r.ready,
        started: !!r.state.running,
        restartCount: r.restartCount,
        state: r.state,
        lastState: r.lastState,
      }));
    let phase: string;
    if (this.failure) phase = "Failed";
    else if (!this.initialized || this.runs.some((r) => !r.everRan)) phase = "Pending";
    else if (this.runs.every((r) => r.done)) {
      phase = this.runs.every((r) => r.state.terminated?.exitCode === 0) ? "Succeeded" : "Failed";
    } else phase = "Running";
    const allReady = this.runs.every((r) => r.ready);
    const anyRunning = this.runs.some((r) => r.state.running);
    const conditions: PodCondition[] = [
      this.condition("PodReadyToStartContainers", !!this.volumes),
      this.condition("Initialized", this.initialized),
      this.condition("ContainersReady", allReady && anyRunning),
      this.condition("Ready", allReady && anyRunning),
    ];
    return {
      phase,
      conditions,
      hostIP: "127.0.0.1",
      hostIPs: [{ ip: "127.0.0.1" }],
      podIP: "127.0.0.1",
      podIPs: [{ ip: "127.0.0.1" }],
      startTime: this.startTime,
      ...(this.init.length ? { initContainerStatuses: statuses(this.init) } : {}),
      containerStatuses: statuses(this.runs),
      ...(this.failure ? this.failure : {}),
    };
  }

  private condition(type: string, ok: boolean): PodCondition {
    const status = ok ? "True" : "False";
    const prev = this.transitions.get(type);
    const at = prev && prev.status === status ? prev.at : new Date().toISOString().replace(/\.\d+Z$/, "Z");
    this.transitions.set(type, { status, at });
    return { type, status, lastTransitionTime: at, lastProbeTime: null };
  }

  private markDirty(): void {
    this.dirty = true;
    if (!this.flushing) this.flushing = this.flush();
  }

  private async flush(): Promise<void> {
    // Yield first: a pass that finds nothing to send would otherwise finish synchronously, clear
    // `flushing` before markDirty stores this promise, and leave every later update unsent.
    await Promise.resolve();
    while (this.dirty) {
      this.dirty = false;
      const status = this.status();
      const text = JSON.stringify(status);
      if (text === this.lastSent) continue;
      const m = this.pod.metadata;
      try {
        await this.ctx.client.patch(
          `/api/v1/namespaces/${m.namespace}/pods/${m.name}/status`,
          { metadata: { uid: m.uid }, status },
          "strategic",
        );
        this.lastSent = text;
      } catch (err) {
        // Gone, or replaced by a new pod of the same name (uid precondition): nothing to report.
        if (isNotFound(err) || (err instanceof KubeError && err.status === 409)) break;
        this.ctx.log(`${this.key}: status update failed: ${err instanceof Error ? err.message : err}`);
        await new Promise((r) => setTimeout(r, 500));
        this.dirty = true;
      }
    }
    this.flushing = undefined;
  }
}

function gpuRequest(pod: Pod): number {
  let total = 0;
  for (const c of pod.spec.containers) {
    const q = c.resources?.limits?.["nvidia.com/gpu"] ?? c.resources?.requests?.["nvidia.com/gpu"];
    if (q) total += Number(q);
  }
  return total;
}

const signalNumbers: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGKILL: 9,
  SIGSEGV: 11,
  SIGTERM: 15,
};
function signalNumber(signal: NodeJS.Signals | null): number {
  return signal ? (signalNumbers[signal] ?? 0) : 0;
}
