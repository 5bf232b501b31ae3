// The Kubernetes layer: typed CRUD, informers, the work queue, leader election and events.
export * from "./backoff.ts";
export * from "./client.ts";
export * from "./events.ts";
export * from "./informer.ts";
export * from "./leaderelection.ts";
export * from "./resource.ts";
export * from "./workqueue.ts";
