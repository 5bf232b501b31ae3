// Pod volumes as local folders. Processes cannot be given a mount namespace without root, so a
// volume is a folder on this machine and every mount path a container names is rewritten to that
// folder (see mountRewriter): emptyDir lives in the pod's folder, hostPath is the path itself,
// a PVC is one folder per claim that outlives its pods, and ConfigMap, Secret, downward-API and
// projected volumes (the service-account token among them) are files written before start.
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import type { KubeClient } from "../kube-client.ts";
import { type ConfigSource, podField, resourceField } from "./env.ts";
import type { Container, DownwardAPIFile, KeyToPath, Pod, Volume } from "./types.ts";

export interface PreparedVolumes {
  /** volume name -> local folder */
  paths: Map<string, string>;
  /** Folders to delete with the pod (emptyDir, token and config volumes). */
  ephemeral: string[];
  /** Refreshes every service-account token file; called on a timer while the pod lives. */
  refreshTokens: () => Promise<void>;
}

export interface VolumeContext {
  client: KubeClient;
  config: ConfigSource;
  podDir: string;
  /** Root of per-claim PVC folders: <pvcRoot>/<namespace>/<claim>. */
  pvcRoot: string;
}

function writeFiles(dir: string, files: Record<string, string>): void {
  for (const [rel, content] of Object.entries(files)) {
    const path = join(dir, normalize(rel));
    if (!path.startsWith(dir)) throw new Error(`volume item path ${rel} escapes the volume`);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, content, { mode: 0o600 });
  }
}

function pickItems(data: Record<string, string>, items: KeyToPath[] | undefined, what: string) {
  if (!items) return data;
  const out: Record<string, string> = {};
  for (const item of items) {
    const value = data[item.key];
    if (value === undefined) throw new Error(`${what} has no key ${item.key}`);
    out[item.path] = value;
  }
  return out;
}

function downwardFiles(pod: Pod, items: DownwardAPIFile[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items ?? []) {
    if (item.fieldRef) out[item.path] = podField(pod, item.fieldRef.fieldPath);
    else if (item.resourceFieldRef) {
      const container = pod.spec.containers[0] as Container;
      out[item.path] = resourceField(pod, container, item.resourceFieldRef);
    }
  }
  return out;
}

/** Requests a token bound to the pod for its service account (TokenRequest API). */
export async function requestToken(
  client: KubeClient,
  pod: Pod,
  audience?: string,
  expirationSeconds = 3600,
): Promise<string> {
  const sa = pod.spec.serviceAccountName || "default";
  const res = await client.create<{ status: { token: string } }>(
    `/api/v1/namespaces/${pod.metadata.namespace}/serviceaccounts/${sa}/token`,
    {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenRequest",
      spec: {
        audiences: audience ? [audience] : null,
        expirationSeconds: Math.max(expirationSeconds, 600),
        boundObjectRef: { apiVersion: "v1", kind: "Pod", name: pod.metadata.name, uid: pod.metadata.uid },
      },
    },
  );
  return res.status.token;
}

async function volumeFiles(
  ctx: VolumeContext,
  pod: Pod,
  volume: Volume,
  tokens: (() => Promise<void>)[],
  dir: string,
): Promise<Record<string, string>> {
  if (volume.configMap) {
    const data = await ctx.config.configMap(volume.configMap.name, volume.configMap.optional);
    return pickItems(data ?? {}, volume.configMap.items, `ConfigMap ${volume.configMap.name}`);
  }
  if (volume.secret) {
    const data = await ctx.config.secret(volume.secret.secretName, volume.secret.optional);
    return pickItems(data ?? {}, volume.secret.items, `Secret ${volume.secret.secretName}`);
  }
  if (volume.downwardAPI) return downwardFiles(pod, volume.downwardAPI.items);
  const files: Record<string, string> = {};
  for (const source of volume.projected?.sources ?? []) {
    if (source.serviceAccountToken) {
      const { audience, expirationSeconds, path } = source.serviceAccountToken;
      const write = async () =>
        writeFiles(dir, { [path]: await requestToken(ctx.client, pod, audience, expirationSeconds) });
      await write();
      tokens.push(write);
    } else if (source.configMap) {
      const data = await ctx.config.configMap(source.configMap.name, source.configMap.optional);
      Object.assign(
        files,
        pickItems(data ?? {}, source.configMap.items, `ConfigMap ${source.configMap.name}`),
      );
    } else if (source.secret) {
      const data = await ctx.config.secret(source.secret.name, source.secret.optional);
      Object.assign(files, pickItems(data ?? {}, source.secret.items, `Secret ${source.secret.name}`));
    } else if (source.downwardAPI) {
      Object.assign(files, downwardFiles(pod, source.downwardAPI.items));
    }
  }
  return files;
}

/**
 * The local folder of a claim: its bound PersistentVolume's hostPath or local path when it has
 * one, otherwise a folder of its own under the kubelet's state.
 */
async function claimPath(ctx: VolumeContext, namespace: string, claim: string): Promise<string> {
  const pvc = await ctx.client.get<{ spec: { volumeName?: string } }>(
    `/api/v1/namespaces/${namespace}/persistentvolumeclaims/${claim}`,
  );
  if (pvc.spec.volumeName) {
    const pv = await ctx.client.get<{ spec: { hostPath?: { path: string }; local?: { path: string } } }>(
      `/api/v1/persistentvolumes/${pvc.spec.volumeName}`,
    );
    const path = pv.spec.hostPath?.path ?? pv.spec.local?.path;
    if (path) return path;
  }
  return join(ctx.pvcRoot, namespace, claim);
}

export async function prepareVolumes(ctx: VolumeContext, pod: Pod): Promise<PreparedVolumes> {
  const paths = new Map<string, string>();
  const ephemeral: string[] = [];
  const tokens: (() => Promise<void>)[] = [];
  for (const volume of pod.spec.volumes ?? []) {
    let dir: string;
    if (volume.hostPath) {
      dir = volume.hostPath.path;
      if (volume.hostPath.type === "DirectoryOrCreate" || !volume.hostPath.type)
        mkdirSync(dir, { recursive: true });
    } else if (volume.persistentVolumeClaim) {
      dir = await claimPath(ctx, pod.metadata.namespace, volume.persistentVolumeClaim.claimName);
      mkdirSync(dir, { recursive: true });
    } else {
      dir = join(ctx.podDir, "volumes", volume.name);
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      ephemeral.push(dir);
      if (!volume.emptyDir) {
        const files = await volumeFiles(ctx, pod, volume, tokens, dir);
        if (!volume.projected && !volume.configMap && !volume.secret && !volume.downwardAPI) {
          throw new Error(
            `volume ${volume.name}: only emptyDir, hostPath, persistentVolumeClaim, configMap, secret, downwardAPI and projected volumes are supported`,
          );
        }
        writeFiles(dir, files);
      }
    }
    paths.set(volume.name, dir);
  }
  return {
    paths,
    ephemeral,
    refreshTokens: async () => {
      for (const write of tokens) await write();
    },
  };
}

/**
 * Maps a container's mount paths to local folders and rewrites any command-line argument, env
 * value or working directory that names a path under a mount (`/data/out/x.mp4`, `--out=/data`)
 * to the local folder. The map is also given to the process as JSON in FRAMEFLEET_MOUNTS.
 */
export function mountRewriter(container: Container, volumes: Map<string, string>) {
  const mounts = new Map<string, string>();
  for (const mount of container.volumeMounts ?? []) {
    const local = volumes.get(mount.name);
    if (!local) throw new Error(`container ${container.name}: volumeMount ${mount.name} names no volume`);
    const target = mount.subPath ? join(local, normalize(mount.subPath)) : local;
    if (mount.subPath) mkdirSync(target, { recursive: true });
    mounts.set(mount.mountPath.replace(/\/+$/, "") || "/", target);
  }
  // One pass with the longest mount path first, so a rewritten path is never rewritten again.
  const ordered = [...mounts.keys()].sort((a, b) => b.length - a.length);
  const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const pattern = new RegExp(`(^|[=\\s:,])(${ordered.map(escapeRegExp).join("|")})(?=/|$|[\\s:,])`, "g");
  const rewrite = (value: string) =>
    ordered.length === 0
      ? value
      : value.replace(pattern, (_m, lead: string, from: string) => `${lead}${mounts.get(from)}`);
  return { mounts: Object.fromEntries(mounts), rewrite };
}
