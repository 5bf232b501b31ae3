// An event recorder in the spirit of client-go's: core/v1 Events on the involved object, so
// `kubectl describe` shows them. Repeats of the same (object, type, reason, message) within ten
// minutes bump the existing event's count instead of creating new ones, and such bumps are
// written at most once per 30 s per event, so a stuck object cannot flood the API server.
import type { KubeClient, KubeObject } from "./client.ts";
import { Resource } from "./resource.ts";

export type EventType = "Normal" | "Warning";

export interface Involved {
  apiVersion?: string;
  kind?: string;
  metadata: { name?: string; namespace?: string; uid?: string; resourceVersion?: string };
}

interface Seen {
  name: string;
  namespace: string;
  count: number;
  firstAt: number;
  writtenAt: number;
}

/** How long a repeated event is folded into the first (default 10 min, as client-go). */
const AGGREGATE_WINDOW_MS = 10 * 60_000;
/** Minimum gap between count updates of one event (default 30 s). */
const COUNT_UPDATE_INTERVAL_MS = 30_000;
/** Cap on remembered events; the oldest are forgotten first. */
const MAX_REMEMBERED = 4096;

export class EventRecorder {
  private readonly events: Resource<KubeObject>;
  private readonly seen = new Map<string, Seen>();

  constructor(
    client: KubeClient,
    private readonly component: string,
    private readonly instance: string,
    private readonly onError: (err: unknown) => void = () => {},
  ) {
    this.events = new Resource(client, { group: "", version: "v1", plural: "events", namespaced: true });
  }

  /** Records an event; never throws (events are best effort) and never blocks the caller. */
  record(obj: Involved, type: EventType, reason: string, message: string): void {
    void this.write(obj, type, reason, message).catch(this.onError);
  }

  /** As record(), but resolves when the write is done (tests and shutdown). */
  async write(obj: Involved, type: EventType, reason: string, message: string): Promise<void> {
    const namespace = obj.metadata.namespace ?? "default";
    const key = `${obj.metadata.uid ?? `${namespace}/${obj.metadata.name}`}|${type}|${reason}|${message}`;
    const now = Date.now();
    const prior = this.seen.get(key);
    if (prior && now - prior.firstAt < AGGREGATE_WINDOW_MS) {
      prior.count += 1;
      if (now - prior.writtenAt < COUNT_UPDATE_INTERVAL_MS) return;
      prior.writtenAt = now;
      await this.events.mergePatch(prior.namespace, prior.name, {
        count: prior.count,
        lastTimestamp: new Date(now).toISOString(),
      });
      return;
    }
    const name = `${obj.metadata.name}.${(now * 1000 + Math.floor(Math.random() * 1000)).toString(16)}`;
    this.remember(key, { name, namespace, count: 1, firstAt: now, writtenAt: now });
    const stamp = new Date(now).toISOString();
    await this.events.create(namespace, {
      apiVersion: "v1",
      kind: "Event",
      metadata: { name, namespace },
      involvedObject: {
        apiVersion: obj.apiVersion,
        kind: obj.kind,
        name: obj.metadata.name,
        namespace,
        uid: obj.metadata.uid,
        resourceVersion: obj.metadata.resourceVersion,
      },
      type,
      reason,
      message: message.slice(0, 1024),
      count: 1,
      firstTimestamp: stamp,
      lastTimestamp: stamp,
      source: { component: this.component, host: this.instance },
      reportingComponent: this.component,
      reportingInstance: this.instance,
    });
  }

  private remember(key: string, value: Seen): void {
    if (this.seen.size >= MAX_REMEMBERED) {
      const oldest = this.seen.keys().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
    this.seen.set(key, value);
  }
}
