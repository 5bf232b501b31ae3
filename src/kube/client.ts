// A thin typed REST client over the Kubernetes API. @kubernetes/client-node's KubeConfig does
// what it is good at (kubeconfig and in-cluster loading, TLS material, tokens, exec plugins);
// requests go through one function so every call states its patch content type explicitly,
// is counted by verb, resource and status code, and can be streamed for watches.
import http from "node:http";
import https from "node:https";
import { KubeConfig } from "@kubernetes/client-node";

/** The four patch flavours the API server accepts; strategic merge is rejected for custom resources. */
export const PatchType = {
  merge: "application/merge-patch+json",
  json: "application/json-patch+json",
  apply: "application/apply-patch+yaml",
} as const;
export type PatchType = (typeof PatchType)[keyof typeof PatchType];

/** Where a kind lives in the API: `group` is "" for the core group. */
export interface ResourceRef {
  group: string;
  version: string;
  plural: string;
  namespaced: boolean;
}

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: OwnerReference[];
  [key: string]: unknown;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  [key: string]: unknown;
}

export interface ObjectList<T> {
  metadata: { resourceVersion?: string; continue?: string };
  items: T[];
}

/** One JSON Patch (RFC 6902) operation. */
export type JsonPatchOp =
  | { op: "add" | "replace" | "test"; path: string; value: unknown }
  | { op: "remove"; path: string };

/** A non-2xx answer from the API server, with the Status object's reason and message. */
export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly verb: string,
    readonly path: string,
  ) {
    super(`${verb} ${path}: ${code} ${reason}: ${message}`);
    this.name = "ApiError";
  }
}

export const isNotFound = (err: unknown): boolean => err instanceof ApiError && err.code === 404;
export const isConflict = (err: unknown): boolean => err instanceof ApiError && err.code === 409;
export const isGone = (err: unknown): boolean => err instanceof ApiError && err.code === 410;
/**
 * A JSON Patch whose `test` op failed: the API server answers 422 Invalid with a generic message
 * and no causes (a schema violation lists its causes). A lost fence looks like this.
 */
export const isTestFailed = (err: unknown): boolean =>
  err instanceof ApiError &&
  err.code === 422 &&
  /test operation|testing value|rejected our request due to an error in our request/i.test(err.message);

/** Called after every request; telemetry counts API traffic with it. */
export type RequestObserver = (verb: string, resource: string, code: number) => void;

export interface RequestOptions {
  body?: unknown;
  contentType?: string;
  query?: Record<string, string | number | boolean | undefined>;
  /** Label for metrics; defaults to the resource segment of the path. */
  resource?: string;
  signal?: AbortSignal;
}

/** Per-request timeout for non-watch calls (default 30 s): a hung connection must not hang a reconcile. */
const REQUEST_TIMEOUT_MS = 30_000;
/** How often TLS material and tokens are reloaded (default 60 s), so rotated tokens are picked up. */
const AUTH_REFRESH_MS = 60_000;

interface AuthState {
  baseUrl: URL;
  agent: http.Agent;
  headers: Record<string, string>;
  loadedAt: number;
}

export class KubeClient {
  private auth?: AuthState;
  private readonly observers: RequestObserver[] = [];

  constructor(readonly config: KubeConfig) {}

  /** Loads $KUBECONFIG, ~/.kube/config or the in-cluster service account, like kubectl does. */
  static fromDefault(kubeconfigPath?: string): KubeClient {
    const kc = new KubeConfig();
    if (kubeconfigPath) kc.loadFromFile(kubeconfigPath);
    else kc.loadFromDefault();
    return new KubeClient(kc);
  }

  /** The namespace of the current context, or "default". */
  get currentNamespace(): string {
    const ctx = this.config.getContextObject(this.config.getCurrentContext());
    return ctx?.namespace ?? "default";
  }

  onRequest(observer: RequestObserver): void {
    this.observers.push(observer);
  }

  private async authState(): Promise<AuthState> {
    if (this.auth && Date.now() - this.auth.loadedAt < AUTH_REFRESH_MS) return this.auth;
    const cluster = this.config.getCurrentCluster();
    if (!cluster) throw new Error("kubeconfig has no current cluster; set KUBECONFIG or --kubeconfig");
    const opts: https.RequestOptions = {};
    await this.config.applyToHTTPSOptions(opts);
    const baseUrl = new URL(cluster.server);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(opts.headers ?? {})) {
      if (typeof v === "string" || typeof v === "number") headers[k] = String(v);
    }
    if (opts.auth) headers.Authorization = `Basic ${Buffer.from(opts.auth).toString("base64")}`;
    this.auth?.agent.destroy();
    const agent =
      baseUrl.protocol === "https:"
        ? new https.Agent({
            keepAlive: true,
            ca: opts.ca,
            cert: opts.cert,
            key: opts.key,
            rejectUnauthorized: opts.rejectUnauthorized,
          })
        : new http.Agent({ keepAlive: true });
    this.auth = { baseUrl, agent, headers, loadedAt: Date.now() };
    return this.auth;
  }

  /** Drops pooled connections (used when the API server restarts, and on shutdown). */
  close(): void {
    this.auth?.agent.destroy();
    this.auth = undefined;
  }

  private async open(
    method: string,
    path: string,
    opts: RequestOptions,
    timeoutMs: number,
  ): Promise<http.IncomingMessage> {
    const auth = await this.authState();
    const url = new URL(path, auth.baseUrl);
    for (const [k, v] of Object.entries(opts.query ?? {})) {
      if (v !== undefined) url.searchParams.set(k, String(v));
    }
    const headers: Record<string, string> = { ...auth.headers, Accept: "application/json" };
    let payload: string | undefined;
    if (opts.body !== undefined) {
      payload = JSON.stringify(opts.body);
      headers["Content-Type"] = opts.contentType ?? "application/json";
      headers["Content-Length"] = String(Buffer.byteLength(payload));
    }
    const mod = url.protocol === "https:" ? https : http;
    const verb = verbOf(method, opts.query);
    const resource = opts.resource ?? resourceOf(path);
    return new Promise((resolve, reject) => {
      const req = mod.request(url, { method, headers, agent: auth.agent, signal: opts.signal }, (res) => {
        for (const o of this.observers) o(verb, resource, res.statusCode ?? 0);
        resolve(res);
      });
      if (timeoutMs > 0)
        req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${path}: timed out`)));
      req.on("error", (err) => {
        for (const o of this.observers) o(verb, resource, 0);
        reject(err);
      });
      req.end(payload);
    });
  }

  /** Sends one request and parses the JSON answer; non-2xx answers throw ApiError. */
  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const res = await this.open(method, path, opts, REQUEST_TIMEOUT_MS);
    const text = await readBody(res);
    const code = res.statusCode ?? 0;
    if (code < 200 || code >= 300) throw toApiError(code, text, method, path);
    return (text ? JSON.parse(text) : {}) as T;
  }

  /**
   * Opens a watch and calls `onEvent` for each event line until the stream ends, which resolves
   * the promise; a non-2xx answer throws ApiError. Abort `signal` to stop.
   */
  async stream(
    path: string,
    query: RequestOptions["query"],
    onEvent: (event: WatchEvent<KubeObject>) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const res = await this.open("GET", path, { query, signal }, 0);
    const code = res.statusCode ?? 0;
    if (code < 200 || code >= 300) throw toApiError(code, await readBody(res), "GET", path);
    let buffered = "";
    res.setEncoding("utf8");
    await new Promise<void>((resolve, reject) => {
      res.on("data", (chunk: string) => {
        buffered += chunk;
        let nl = buffered.indexOf("\n");
        while (nl >= 0) {
          const line = buffered.slice(0, nl).trim();
          buffered = buffered.slice(nl + 1);
          if (line) {
            try {
              onEvent(JSON.parse(line) as WatchEvent<KubeObject>);
            } catch (err) {
              res.destroy(err as Error);
              return;
            }
          }
          nl = buffered.indexOf("\n");
        }
      });
      res.on("end", resolve);
      res.on("close", resolve);
      res.on("error", (err) => (signal.aborted ? resolve() : reject(err)));
    });
  }
}

export interface WatchEvent<T> {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  object: T;
}

function readBody(res: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on("data", (c: Buffer) => chunks.push(c));
    res.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    res.on("error", reject);
  });
}

function toApiError(code: number, text: string, method: string, path: string): ApiError {
  let reason = http.STATUS_CODES[code] ?? "Error";
  let message = text.slice(0, 500);
  try {
    const status = JSON.parse(text) as { reason?: string; message?: string };
    reason = status.reason ?? reason;
    message = status.message ?? message;
  } catch {
    // not a Status object; keep the raw text
  }
  return new ApiError(code, reason, message, method, path);
}

function verbOf(method: string, query: RequestOptions["query"]): string {
  if (method === "GET") return query?.watch ? "watch" : "get";
  return method.toLowerCase();
}

/** "/apis/g/v/namespaces/ns/plural/name/status" -> "plural/status"; used only as a metric label. */
export function resourceOf(path: string): string {
  const parts = path.split("?")[0]?.split("/").filter(Boolean) ?? [];
  const start = parts[0] === "api" ? 2 : 3;
  let rest = parts.slice(start);
  if (rest[0] === "namespaces" && rest.length > 2) rest = rest.slice(2);
  const [plural = "unknown", , sub] = rest;
  return sub ? `${plural}/${sub}` : plural;
}
