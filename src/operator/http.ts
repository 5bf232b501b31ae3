// The probe and metrics endpoints every framefleet process serves (operator replicas and
// workers): /healthz (the process is alive), /readyz (it should get work), /metrics (Prometheus).
import type { Server } from "node:http";
import express from "express";
import { registry } from "../telemetry/index.ts";

export interface ProbeChecks {
  healthy: () => boolean;
  ready: () => boolean;
  /** A line for /readyz when not ready, e.g. "loading model". */
  status?: () => string;
}

export function serveProbes(port: number, host: string, checks: ProbeChecks): Promise<Server> {
  const app = express();
  app.get("/healthz", (_req, res) => {
    res
      .status(checks.healthy() ? 200 : 503)
      .type("text/plain")
      .send(checks.healthy() ? "ok\n" : "unhealthy\n");
  });
  app.get("/readyz", (_req, res) => {
    const ready = checks.ready();
    res
      .status(ready ? 200 : 503)
      .type("text/plain")
      .send(`${ready ? "ready" : (checks.status?.() ?? "not ready")}\n`);
  });
  app.get("/metrics", async (_req, res) => {
    res.type(registry.contentType).send(await registry.metrics());
  });
  return new Promise((resolve, reject) => {
    const server = app.listen(port, host, (err?: Error) => (err ? reject(err) : resolve(server)));
    server.on("error", reject);
  });
}
