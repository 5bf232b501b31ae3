// Container environment as the kubelet builds it: envFrom, env with downward-API field and
// resource references, ConfigMap and Secret keys, and $(VAR) expansion.
import type { KubeClient } from "../kube-client.ts";
import { isNotFound } from "../kube-client.ts";
import type { Container, KeySelector, Pod } from "./types.ts";

interface DataObject {
  data?: Record<string, string>;
}

/** Reads ConfigMaps and Secrets of one namespace; Secret values come back decoded. */
export class ConfigSource {
  constructor(
    private readonly client: KubeClient,
    private readonly namespace: string,
  ) {}

  async configMap(name: string, optional = false): Promise<Record<string, string> | undefined> {
    return this.read(`/api/v1/namespaces/${this.namespace}/configmaps/${name}`, optional, false);
  }

  async secret(name: string, optional = false): Promise<Record<string, string> | undefined> {
    return this.read(`/api/v1/namespaces/${this.namespace}/secrets/${name}`, optional, true);
  }

  async key(kind: "configMap" | "secret", ref: KeySelector): Promise<string | undefined> {
    const data =
      kind === "configMap"
        ? await this.configMap(ref.name ?? "", ref.optional)
        : await this.secret(ref.name ?? "", ref.optional);
    const value = data?.[ref.key];
    if (value === undefined && !ref.optional) {
      throw new Error(
        `couldn't find key ${ref.key} in ${kind === "configMap" ? "ConfigMap" : "Secret"} ${this.namespace}/${ref.name}`,
      );
    }
    return value;
  }

  private async read(path: string, optional: boolean, decode: boolean) {
    try {
      const obj = await this.client.get<DataObject>(path);
      const data = obj.data ?? {};
      if (!decode) return data;
      return Object.fromEntries(
        Object.entries(data).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]),
      );
    } catch (err) {
      if (isNotFound(err) && optional) return undefined;
      if (isNotFound(err)) throw new Error(`${path.split("/").slice(-2).join(" ")} not found`);
      throw err;
    }
  }
}

/** metadata.name, metadata.labels['x'], spec.nodeName, status.podIP, ... */
export function podField(pod: Pod, fieldPath: string): string {
  const keyed = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(fieldPath);
  if (keyed) {
    const map = keyed[1] === "labels" ? pod.metadata.labels : pod.metadata.annotations;
    return map?.[keyed[2] ?? ""] ?? "";
  }
  const serialize = (m?: Record<string, string>) =>
    Object.entries(m ?? {})
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => `${k}="${v}"`)
      .join("\n");
  switch (fieldPath) {
    case "metadata.name":
      return pod.metadata.name;
    case "metadata.namespace":
      return pod.metadata.namespace;
    case "metadata.uid":
      return pod.metadata.uid;
    case "metadata.labels":
      return serialize(pod.metadata.labels);
    case "metadata.annotations":
      return serialize(pod.metadata.annotations);
    case "spec.nodeName":
      return pod.spec.nodeName ?? "";
    case "spec.serviceAccountName":
      return pod.spec.serviceAccountName ?? "";
    case "status.hostIP":
    case "status.podIP":
      return "127.0.0.1";
    case "status.hostIPs":
    case "status.podIPs":
      return "127.0.0.1";
    default:
      throw new Error(`unsupported downward API field ${fieldPath}`);
  }
}

const quantityUnits: Record<string, number> = {
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 1024,
  Mi: 1024 ** 2,
  Gi: 1024 ** 3,
  Ti: 1024 ** 4,
};

export function parseQuantity(q: string): number {
  const match = /^([0-9.]+)([a-zA-Z]*)$/.exec(q.trim());
  if (!match) throw new Error(`bad quantity ${q}`);
  const unit = match[2] ?? "";
  const scale = unit ? quantityUnits[unit] : 1;
  if (scale === undefined) throw new Error(`bad quantity unit in ${q}`);
  return Number(match[1]) * scale;
}

/** limits.cpu, requests.memory, ... rounded up in units of the divisor, as the kubelet does. */
export function resourceField(
  pod: Pod,
  container: Container,
  ref: { containerName?: string; resource: string; divisor?: string },
): string {
  const target = ref.containerName
    ? pod.spec.containers.find((c) => c.name === ref.containerName)
    : container;
  const [kind, ...rest] = ref.resource.split(".");
  const name = rest.join(".");
  const resources = target?.resources;
  const value =
    kind === "limits"
      ? (resources?.limits?.[name] ?? resources?.requests?.[name])
      : resources?.requests?.[name];
  const nodeDefault: Record<string, string> = { cpu: "32", memory: "256Gi", "ephemeral-storage": "100Gi" };
  const quantity = parseQuantity(value ?? (kind === "limits" ? (nodeDefault[name] ?? "0") : "0"));
  const divisor = parseQuantity(ref.divisor ?? "1");
  return String(Math.ceil(quantity / divisor));
}

/** Expands $(VAR) references from `vars`; $$ escapes, unknown references stay as written. */
export function expandVars(text: string, vars: Record<string, string>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (whole, name: string | undefined) => {
    if (whole === "$$") return "$";
    return name !== undefined && vars[name] !== undefined ? vars[name] : whole;
  });
}

/** The container's own environment (envFrom, then env in order), without the kubelet's base. */
export async function containerEnv(
  pod: Pod,
  container: Container,
  config: ConfigSource,
  base: Record<string, string>,
): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  for (const from of container.envFrom ?? []) {
    const data = from.configMapRef
      ? await config.configMap(from.configMapRef.name, from.configMapRef.optional)
      : from.secretRef
        ? await config.secret(from.secretRef.name, from.secretRef.optional)
        : undefined;
    for (const [k, v] of Object.entries(data ?? {})) env[`${from.prefix ?? ""}${k}`] = v;
  }
  for (const v of container.env ?? []) {
    const from = v.valueFrom;
    let value: string | undefined;
    if (from?.fieldRef) value = podField(pod, from.fieldRef.fieldPath);
    else if (from?.resourceFieldRef) value = resourceField(pod, container, from.resourceFieldRef);
    else if (from?.configMapKeyRef) value = await config.key("configMap", from.configMapKeyRef);
    else if (from?.secretKeyRef) value = await config.key("secret", from.secretKeyRef);
    else value = expandVars(v.value ?? "", { ...base, ...env });
    if (value !== undefined) env[v.name] = value;
  }
  return env;
}
