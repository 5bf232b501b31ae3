// Readiness and liveness probes against local processes: httpGet and tcpSocket go to 127.0.0.1
// (every pod shares the loopback address), exec runs the command on this machine.
import { spawn } from "node:child_process";
import { request } from "node:http";
import { connect } from "node:net";
import type { Container, Probe } from "./types.ts";

function resolvePort(container: Container, port: number | string): number {
  if (typeof port === "number") return port;
  const named = container.ports?.find((p) => p.name === port);
  if (named) return named.containerPort;
  const n = Number(port);
  if (Number.isInteger(n)) return n;
  throw new Error(`probe port ${port} names no container port`);
}

function probeOnce(
  container: Container,
  probe: Probe,
  env: Record<string, string>,
  cwd: string,
): Promise<boolean> {
  const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
  return new Promise<boolean>((resolve) => {
    try {
      if (probe.httpGet) {
        const headers = Object.fromEntries((probe.httpGet.httpHeaders ?? []).map((h) => [h.name, h.value]));
        const req = request(
          {
            host: "127.0.0.1",
            port: resolvePort(container, probe.httpGet.port),
            path: probe.httpGet.path ?? "/",
            headers,
            timeout: timeoutMs,
          },
          (res) => {
            res.resume();
            const code = res.statusCode ?? 0;
            resolve(code >= 200 && code < 400);
          },
        );
        req.on("timeout", () => req.destroy());
        req.on("error", () => resolve(false));
        req.end();
      } else if (probe.tcpSocket) {
        const socket = connect({ host: "127.0.0.1", port: resolvePort(container, probe.tcpSocket.port) });
        socket.setTimeout(timeoutMs, () => socket.destroy());
        socket.on("connect", () => {
          socket.end();
          resolve(true);
        });
        socket.on("error", () => resolve(false));
        socket.on("close", () => resolve(false));
      } else if (probe.exec) {
        const [cmd, ...args] = probe.exec.command;
        if (!cmd) return resolve(false);
        const child = spawn(cmd, args, { env, cwd, stdio: "ignore", timeout: timeoutMs });
        child.on("error", () => resolve(false));
        child.on("exit", (code) => resolve(code === 0));
      } else {
        resolve(true);
      }
    } catch {
      resolve(false);
    }
  });
}

/**
 * Runs a probe on its period until stopped; calls onResult when the probe's verdict changes
 * (after successThreshold successes or failureThreshold failures in a row).
 */
export function startProber(
  container: Container,
  probe: Probe,
  env: Record<string, string>,
  cwd: string,
  onResult: (ok: boolean) => void,
): () => void {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let verdict: boolean | undefined;
  let successes = 0;
  let failures = 0;
  const tick = async () => {
    if (stopped) return;
    const ok = await probeOnce(container, probe, env, cwd);
    if (stopped) return;
    if (ok) {
      successes++;
      failures = 0;
      if (verdict !== true && successes >= (probe.successThreshold ?? 1)) {
        verdict = true;
        onResult(true);
      }
    } else {
      failures++;
      successes = 0;
      if (verdict !== false && failures >= (probe.failureThreshold ?? 3)) {
        verdict = false;
        onResult(false);
      }
    }
    timer = setTimeout(tick, (probe.periodSeconds ?? 10) * 1000);
  };
  timer = setTimeout(tick, (probe.initialDelaySeconds ?? 0) * 1000);
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
  };
}
