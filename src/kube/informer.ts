// List-then-watch with a local cache, like client-go's reflector + indexer. The watch resumes
// from the last resourceVersion seen (bookmarks keep it fresh); 410 Gone relists; any other
// error restarts the loop with exponential backoff. Handlers get every change exactly as the
// cache sees it, including synthetic deletes for objects that vanished while disconnected.
import { exponentialDelay, sleep } from "./backoff.ts";
import { ApiError, type KubeObject, type WatchEvent } from "./client.ts";
import { objectKey, type Resource } from "./resource.ts";

export interface InformerHandlers<T> {
  add?(obj: T): void;
  update?(obj: T, old: T): void;
  delete?(obj: T): void;
}

export interface InformerOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Server-side watch timeout (default 5 min, randomised by up to 2x like client-go), then re-watch. */
  watchTimeoutSeconds?: number;
  /** Called on list/watch errors, before the backoff. */
  onError?: (err: unknown) => void;
}

/** Restart backoff for failed lists or watches (default 800 ms doubling to 30 s, as client-go's). */
const RESTART_BASE_MS = 800;
const RESTART_MAX_MS = 30_000;

export class Informer<T extends KubeObject> {
  private readonly cache = new Map<string, T>();
  private readonly handlers: InformerHandlers<T>[] = [];
  private resourceVersion = "";
  private synced = false;
  private readonly syncWaiters: Array<() => void> = [];
  private abort = new AbortController();
  private running?: Promise<void>;

  constructor(
    readonly resource: Resource<T>,
    readonly opts: InformerOptions = {},
  ) {}

  on(handlers: InformerHandlers<T>): void {
    this.handlers.push(handlers);
  }

  get(key: string): T | undefined {
    return this.cache.get(key);
  }

  list(): T[] {
    return [...this.cache.values()];
  }

  get hasSynced(): boolean {
    return this.synced;
  }

  /** Resolves once the first list has filled the cache. */
  waitForSync(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  start(): void {
    if (this.running) return;
    this.abort = new AbortController();
    this.running = this.loop(this.abort.signal);
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
    this.running = undefined;
  }

  private async loop(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      try {
        if (!this.resourceVersion) await this.relist();
        await this.watchOnce(signal);
        failures = 0;
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof ApiError && err.code === 410) {
          this.resourceVersion = "";
          continue;
        }
        this.opts.onError?.(err);
        await sleep(exponentialDelay(failures++, RESTART_BASE_MS, RESTART_MAX_MS), signal);
      }
    }
  }

  private async relist(): Promise<void> {
    const list = await this.resource.list(this.opts.namespace, {
      labelSelector: this.opts.labelSelector,
      fieldSelector: this.opts.fieldSelector,
    });
    const seen = new Set<string>();
    for (const obj of list.items) {
      const key = objectKey(obj);
      seen.add(key);
      this.upsert(key, obj);
    }
    for (const [key, old] of this.cache) {
      if (!seen.has(key)) {
        this.cache.delete(key);
        for (const h of this.handlers) h.delete?.(old);
      }
    }
    this.resourceVersion = list.metadata.resourceVersion ?? "";
    if (!this.synced) {
      this.synced = true;
      for (const w of this.syncWaiters.splice(0)) w();
    }
  }

  private upsert(key: string, obj: T): void {
    const old = this.cache.get(key);
    if (old?.metadata.resourceVersion === obj.metadata.resourceVersion && old) return;
    this.cache.set(key, obj);
    for (const h of this.handlers) {
      if (old) h.update?.(obj, old);
      else h.add?.(obj);
    }
  }

  private async watchOnce(signal: AbortSignal): Promise<void> {
    const base = this.opts.watchTimeoutSeconds ?? 300;
    const timeoutSeconds = Math.floor(base * (1 + Math.random()));
    await this.resource.client.stream(
      this.resource.path(this.opts.namespace),
      {
        watch: 1,
        resourceVersion: this.resourceVersion,
        allowWatchBookmarks: true,
        labelSelector: this.opts.labelSelector,
        fieldSelector: this.opts.fieldSelector,
        timeoutSeconds,
      },
      (event) => this.handle(event as WatchEvent<T>),
      signal,
    );
  }

  private handle(event: WatchEvent<T>): void {
    if (event.type === "ERROR") {
      const status = event.object as unknown as { code?: number; reason?: string; message?: string };
      throw new ApiError(status.code ?? 500, status.reason ?? "Error", status.message ?? "", "WATCH", "");
    }
    const obj = event.object;
    this.resourceVersion = obj.metadata.resourceVersion ?? this.resourceVersion;
    if (event.type === "BOOKMARK") return;
    const key = objectKey(obj);
    if (event.type === "DELETED") {
      this.cache.delete(key);
      for (const h of this.handlers) h.delete?.(obj);
      return;
    }
    this.upsert(key, obj);
  }
}
