// Typed handles for every kind the operator and the worker touch.
import {
  type AcceleratedModel,
  GROUP,
  JOB_PLURAL,
  MODEL_PLURAL,
  VERSION,
  type VideoGenerationJob,
} from "../api/index.ts";
import type { KubeClient, KubeObject, LeaseObject } from "../kube/index.ts";
import { Resource } from "../kube/index.ts";

/** Label a job carries while assigned: the worker pod's name. Workers watch jobs by it. */
export const WORKER_LABEL = `${GROUP}/worker`;
export const MODEL_LABEL = `${GROUP}/model`;
export const GPU_CLASS_LABEL = `${GROUP}/gpu-class`;
export const COMPONENT_LABEL = "app.kubernetes.io/component";
/** Finalizer that keeps a deleted job until its running attempt is revoked. */
export const JOB_FINALIZER = `${GROUP}/cancel-attempt`;

export type ModelObject = AcceleratedModel & KubeObject;
export type JobObject = VideoGenerationJob & KubeObject;

export interface PodObject extends KubeObject {
  spec?: { nodeName?: string; [key: string]: unknown };
  status?: {
    phase?: string;
    conditions?: Array<{ type: string; status: string; reason?: string; message?: string }>;
    containerStatuses?: Array<{
      name?: string;
      ready?: boolean;
      restartCount?: number;
      state?: {
        waiting?: { reason?: string; message?: string };
        terminated?: { reason?: string; exitCode?: number; message?: string };
      };
      lastState?: { terminated?: { reason?: string; exitCode?: number; message?: string } };
    }>;
    startTime?: string;
  };
}

export interface ConfigMapObject extends KubeObject {
  data?: Record<string, string>;
}

export function kinds(client: KubeClient) {
  return {
    models: new Resource<ModelObject>(client, {
      group: GROUP,
      version: VERSION,
      plural: MODEL_PLURAL,
      namespaced: true,
    }),
    jobs: new Resource<JobObject>(client, {
      group: GROUP,
      version: VERSION,
      plural: JOB_PLURAL,
      namespaced: true,
    }),
    pods: new Resource<PodObject>(client, { group: "", version: "v1", plural: "pods", namespaced: true }),
    configMaps: new Resource<ConfigMapObject>(client, {
      group: "",
      version: "v1",
      plural: "configmaps",
      namespaced: true,
    }),
    leases: new Resource<LeaseObject>(client, {
      group: "coordination.k8s.io",
      version: "v1",
      plural: "leases",
      namespaced: true,
    }),
  };
}
export type Kinds = ReturnType<typeof kinds>;
