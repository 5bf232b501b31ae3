// Dynamic provisioning for the default StorageClass `framefleet-local`: every claim of that class
// gets a hostPath PersistentVolume on a per-claim local folder (<state>/pvcs/<ns>/<claim>), which
// kube-controller-manager's PV controller then binds; released volumes are deleted with their
// folder (reclaimPolicy Delete).
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { KubeClient } from "../kube-client.ts";

export const storageClassName = "framefleet-local";
export const provisionerName = "framefleet.dev/local-folder";

interface Claim {
  metadata: { name: string; namespace: string; uid: string };
  spec: {
    storageClassName?: string;
    volumeName?: string;
    accessModes?: string[];
    resources?: { requests?: { storage?: string } };
  };
  status?: { phase?: string };
}

interface Volume {
  metadata: { name: string };
  spec: { storageClassName?: string; hostPath?: { path: string } };
  status?: { phase?: string };
}

export const storageClass = {
  apiVersion: "storage.k8s.io/v1",
  kind: "StorageClass",
  metadata: {
    name: storageClassName,
    annotations: { "storageclass.kubernetes.io/is-default-class": "true" },
  },
  provisioner: provisionerName,
  reclaimPolicy: "Delete",
  volumeBindingMode: "Immediate",
};

export function claimFolder(stateDir: string, namespace: string, claim: string): string {
  return join(stateDir, "pvcs", namespace, claim);
}

/** One provisioning pass: PVs for pending claims of our class, deletion of released ones. */
export async function provisionOnce(client: KubeClient, stateDir: string): Promise<void> {
  const claims = await client.get<{ items: Claim[] }>("/api/v1/persistentvolumeclaims");
  for (const claim of claims.items) {
    if (
      claim.spec.storageClassName !== storageClassName ||
      claim.spec.volumeName ||
      claim.status?.phase !== "Pending"
    )
      continue;
    const { name, namespace, uid } = claim.metadata;
    const path = claimFolder(stateDir, namespace, name);
    mkdirSync(path, { recursive: true });
    await client.ensure("/api/v1/persistentvolumes", {
      apiVersion: "v1",
      kind: "PersistentVolume",
      metadata: { name: `pvc-${uid}`, annotations: { "pv.kubernetes.io/provisioned-by": provisionerName } },
      spec: {
        capacity: { storage: claim.spec.resources?.requests?.storage ?? "1Gi" },
        accessModes: claim.spec.accessModes?.length ? claim.spec.accessModes : ["ReadWriteOnce"],
        persistentVolumeReclaimPolicy: "Delete",
        storageClassName,
        hostPath: { path, type: "DirectoryOrCreate" },
        claimRef: { apiVersion: "v1", kind: "PersistentVolumeClaim", namespace, name, uid },
      },
    });
  }
  const volumes = await client.get<{ items: Volume[] }>("/api/v1/persistentvolumes");
  for (const pv of volumes.items) {
    if (pv.spec.storageClassName !== storageClassName || pv.status?.phase !== "Released") continue;
    await client.delete(`/api/v1/persistentvolumes/${pv.metadata.name}`).catch(() => {});
    if (pv.spec.hostPath?.path.startsWith(join(stateDir, "pvcs")))
      rmSync(pv.spec.hostPath.path, { recursive: true, force: true });
  }
}
