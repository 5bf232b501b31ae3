// Typed CRUD for one kind: paths are built once from a ResourceRef, every patch names its
// content type, and status writes go to the status subresource.
import {
  type JsonPatchOp,
  type KubeClient,
  type KubeObject,
  type ObjectList,
  PatchType,
  type ResourceRef,
} from "./client.ts";

export interface ListOptions {
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continue?: string;
  resourceVersion?: string;
}

export interface WriteOptions {
  /** Server-side apply owner; also recorded in managedFields for other writes. */
  fieldManager?: string;
  /** Take ownership of conflicting fields (server-side apply only). */
  force?: boolean;
}

export class Resource<T extends KubeObject> {
  constructor(
    readonly client: KubeClient,
    readonly ref: ResourceRef,
  ) {}

  get apiVersion(): string {
    return this.ref.group ? `${this.ref.group}/${this.ref.version}` : this.ref.version;
  }

  /** Collection path; `namespace` undefined on a namespaced kind means all namespaces. */
  path(namespace?: string, name?: string, subresource?: string): string {
    const base = this.ref.group ? `/apis/${this.ref.group}/${this.ref.version}` : `/api/${this.ref.version}`;
    let p = base;
    if (this.ref.namespaced && namespace) p += `/namespaces/${encodeURIComponent(namespace)}`;
    p += `/${this.ref.plural}`;
    if (name) p += `/${encodeURIComponent(name)}`;
    if (subresource) p += `/${subresource}`;
    return p;
  }

  get(namespace: string | undefined, name: string): Promise<T> {
    return this.client.request<T>("GET", this.path(namespace, name));
  }

  /** Lists every page; returns the items and the list's resourceVersion for a following watch. */
  async list(namespace: string | undefined, opts: ListOptions = {}): Promise<ObjectList<T>> {
    const items: T[] = [];
    let cont: string | undefined;
    let resourceVersion: string | undefined;
    do {
      const page = await this.client.request<ObjectList<T>>("GET", this.path(namespace), {
        query: { limit: 500, ...opts, continue: cont },
      });
      items.push(...page.items);
      cont = page.metadata.continue || undefined;
      resourceVersion = page.metadata.resourceVersion;
    } while (cont);
    return { metadata: { resourceVersion }, items };
  }

  create(namespace: string | undefined, obj: T, opts: WriteOptions = {}): Promise<T> {
    return this.client.request<T>("POST", this.path(namespace), {
      body: { apiVersion: this.apiVersion, ...obj },
      query: { fieldManager: opts.fieldManager },
    });
  }

  /** Replaces the whole object; metadata.resourceVersion makes it a compare-and-swap (409 on a race). */
  replace(namespace: string | undefined, obj: T, opts: WriteOptions = {}): Promise<T> {
    return this.client.request<T>("PUT", this.path(namespace, obj.metadata.name), {
      body: { apiVersion: this.apiVersion, ...obj },
      query: { fieldManager: opts.fieldManager },
    });
  }

  /** Deletes; `preconditionUid` makes sure a recreated object of the same name is left alone. */
  delete(
    namespace: string | undefined,
    name: string,
    opts: { preconditionUid?: string; gracePeriodSeconds?: number; propagationPolicy?: string } = {},
  ): Promise<unknown> {
    const body: Record<string, unknown> = { kind: "DeleteOptions", apiVersion: "v1" };
    if (opts.preconditionUid) body.preconditions = { uid: opts.preconditionUid };
    if (opts.gracePeriodSeconds !== undefined) body.gracePeriodSeconds = opts.gracePeriodSeconds;
    if (opts.propagationPolicy) body.propagationPolicy = opts.propagationPolicy;
    return this.client.request("DELETE", this.path(namespace, name), { body });
  }

  /** RFC 7386 merge patch: for metadata and spec, where last-writer-wins is fine. */
  mergePatch(
    namespace: string | undefined,
    name: string,
    patch: Record<string, unknown>,
    opts: WriteOptions & { subresource?: string } = {},
  ): Promise<T> {
    return this.client.request<T>("PATCH", this.path(namespace, name, opts.subresource), {
      body: patch,
      contentType: PatchType.merge,
      query: { fieldManager: opts.fieldManager },
    });
  }

  /** RFC 6902 JSON Patch; include `test` ops to make the write conditional (fencing). */
  jsonPatch(
    namespace: string | undefined,
    name: string,
    ops: JsonPatchOp[],
    opts: WriteOptions & { subresource?: string } = {},
  ): Promise<T> {
    return this.client.request<T>("PATCH", this.path(namespace, name, opts.subresource), {
      body: ops,
      contentType: PatchType.json,
      query: { fieldManager: opts.fieldManager },
    });
  }

  /** Server-side apply: for objects several owners share; the content type is JSON-compatible YAML. */
  apply(
    namespace: string | undefined,
    obj: T,
    opts: Required<Pick<WriteOptions, "fieldManager">> & WriteOptions & { subresource?: string },
  ): Promise<T> {
    const name = obj.metadata.name;
    if (!name) throw new Error("server-side apply needs metadata.name");
    return this.client.request<T>("PATCH", this.path(namespace, name, opts.subresource), {
      body: { apiVersion: this.apiVersion, ...obj },
      contentType: PatchType.apply,
      query: { fieldManager: opts.fieldManager, force: opts.force ? true : undefined },
    });
  }
}

export const objectKey = (obj: { metadata: { namespace?: string; name?: string } }): string =>
  obj.metadata.namespace ? `${obj.metadata.namespace}/${obj.metadata.name}` : (obj.metadata.name ?? "");

export function splitKey(key: string): { namespace: string | undefined; name: string } {
  const i = key.indexOf("/");
  return i < 0 ? { namespace: undefined, name: key } : { namespace: key.slice(0, i), name: key.slice(i + 1) };
}
