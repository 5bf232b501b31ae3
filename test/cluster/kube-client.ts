// A minimal Kubernetes REST client over node:https for the cluster tooling (control-plane
// bootstrap and the process kubelet): JSON requests, explicit patch content types and watches
// that resume from the last resourceVersion. Kept independent of src/kube so the test
// infrastructure never depends on the code it tests.
import { readFileSync } from "node:fs";
import { Agent, request as httpsRequest } from "node:https";
import { dirname, resolve } from "node:path";
import { parse } from "yaml";

export interface KubeCredentials {
  server: string;
  ca: Buffer;
  cert?: Buffer;
  key?: Buffer;
  token?: string;
}

export class KubeError extends Error {
  constructor(
    readonly status: number,
    readonly body: KubeStatusBody,
    method: string,
    path: string,
  ) {
    super(`${method} ${path}: ${status} ${body.reason ?? ""} ${body.message ?? ""}`.trim());
  }
}

export interface KubeStatusBody {
  kind?: string;
  reason?: string;
  message?: string;
  code?: number;
}

export type PatchType = "merge" | "strategic" | "json";
const patchContentType: Record<PatchType, string> = {
  merge: "application/merge-patch+json",
  strategic: "application/strategic-merge-patch+json",
  json: "application/json-patch+json",
};

export interface WatchEvent<T> {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  object: T;
}

interface KubeconfigFile {
  clusters?: { name: string; cluster: { server: string; "certificate-authority"?: string } }[];
  users?: {
    name: string;
    user: { "client-certificate"?: string; "client-key"?: string; token?: string };
  }[];
}

/** Reads a kubeconfig whose (only) cluster and user reference files or a token. */
export function credentialsFromKubeconfig(path: string): KubeCredentials {
  const doc = parse(readFileSync(path, "utf8")) as KubeconfigFile;
  const cluster = doc.clusters?.[0]?.cluster;
  const user = doc.users?.[0]?.user;
  if (!cluster?.server || !cluster["certificate-authority"] || !user) {
    throw new Error(`${path}: expected a cluster with server and certificate-authority and a user`);
  }
  const base = dirname(path);
  const file = (p: string) => readFileSync(resolve(base, p));
  return {
    server: cluster.server,
    ca: file(cluster["certificate-authority"]),
    cert: user["client-certificate"] ? file(user["client-certificate"]) : undefined,
    key: user["client-key"] ? file(user["client-key"]) : undefined,
    token: user.token,
  };
}

export class KubeClient {
  private readonly agent: Agent;
  private readonly url: URL;

  constructor(readonly credentials: KubeCredentials) {
    this.url = new URL(credentials.server);
    this.agent = new Agent({
      keepAlive: true,
      ca: credentials.ca,
      cert: credentials.cert,
      key: credentials.key,
      maxSockets: 16,
    });
  }

  static fromKubeconfig(path: string): KubeClient {
    return new KubeClient(credentialsFromKubeconfig(path));
  }

  close(): void {
    this.agent.destroy();
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>("GET", path);
  }

  create<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>("POST", path, body);
  }

  replace<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>("PUT", path, body);
  }

  patch<T>(path: string, body: unknown, type: PatchType): Promise<T> {
    return this.request<T>("PATCH", path, body, patchContentType[type]);
  }

  delete<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>("DELETE", path, body);
  }

  /** Creates the object, or leaves the existing one alone (AlreadyExists is success). */
  async ensure<T>(collectionPath: string, body: unknown): Promise<T | undefined> {
    try {
      return await this.create<T>(collectionPath, body);
    } catch (err) {
      if (err instanceof KubeError && err.status === 409) return undefined;
      throw err;
    }
  }

  request<T>(method: string, path: string, body?: unknown, contentType = "application/json"): Promise<T> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise<T>((resolvePromise, reject) => {
      const req = httpsRequest(
        {
          agent: this.agent,
          host: this.url.hostname,
          port: this.url.port,
          method,
          path,
          headers: {
            accept: "application/json",
            ...(payload ? { "content-type": contentType, "content-length": payload.length } : {}),
            ...(this.credentials.token ? { authorization: `Bearer ${this.credentials.token}` } : {}),
          },
          timeout: 30_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            let parsed: unknown;
            try {
              parsed = text ? JSON.parse(text) : {};
            } catch {
              parsed = { message: text };
            }
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) resolvePromise(parsed as T);
            else reject(new KubeError(status, parsed as KubeStatusBody, method, path));
          });
          res.on("error", reject);
        },
      );
      req.on("timeout", () => req.destroy(new Error(`${method} ${path}: timed out`)));
      req.on("error", reject);
      if (payload) req.write(payload);
      req.end();
    });
  }

  /**
   * Streams watch events of a collection from resourceVersion until the server closes the stream
   * or `signal` aborts. Resolves with the last resourceVersion seen; rejects with KubeError 410
   * when the version is too old (the caller relists).
   */
  watch<T extends { metadata?: { resourceVersion?: string } }>(
    collectionPath: string,
    resourceVersion: string,
    onEvent: (event: WatchEvent<T>) => void,
    signal: AbortSignal,
  ): Promise<string> {
    const sep = collectionPath.includes("?") ? "&" : "?";
    const path = `${collectionPath}${sep}watch=1&allowWatchBookmarks=true&timeoutSeconds=240&resourceVersion=${resourceVersion}`;
    let lastVersion = resourceVersion;
    return new Promise<string>((resolvePromise, reject) => {
      const req = httpsRequest(
        {
          agent: this.agent,
          host: this.url.hostname,
          port: this.url.port,
          method: "GET",
          path,
          signal,
          headers: {
            accept: "application/json",
            ...(this.credentials.token ? { authorization: `Bearer ${this.credentials.token}` } : {}),
          },
        },
        (res) => {
          if (res.statusCode !== 200) {
            const chunks: Buffer[] = [];
            res.on("data", (c: Buffer) => chunks.push(c));
            res.on("end", () => {
              let body: KubeStatusBody = {};
              try {
                body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as KubeStatusBody;
              } catch {}
              reject(new KubeError(res.statusCode ?? 0, body, "WATCH", collectionPath));
            });
            return;
          }
          let buffered = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => {
            buffered += chunk;
            for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n")) {
              const line = buffered.slice(0, nl);
              buffered = buffered.slice(nl + 1);
              if (!line.trim()) continue;
              const event = JSON.parse(line) as WatchEvent<T>;
              if (event.type === "ERROR") {
                const status = event.object as unknown as KubeStatusBody;
                req.destroy();
                reject(new KubeError(status.code ?? 500, status, "WATCH", collectionPath));
                return;
              }
              lastVersion = event.object.metadata?.resourceVersion ?? lastVersion;
              onEvent(event);
            }
          });
          res.on("end", () => resolvePromise(lastVersion));
          res.on("error", (err) => (signal.aborted ? resolvePromise(lastVersion) : reject(err)));
        },
      );
      req.on("error", (err) => (signal.aborted ? resolvePromise(lastVersion) : reject(err)));
      req.end();
    });
  }
}

export function isNotFound(err: unknown): boolean {
  return err instanceof KubeError && err.status === 404;
}
