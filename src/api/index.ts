// The framefleet API: the zod schemas are the only definition of both kinds.
export * from "./common.ts";
export * from "./crd.ts";
export * from "./gpuclass.ts";
export * from "./job.ts";
export * from "./knobs.ts";
export * from "./model.ts";
export * from "./operatorconfig.ts";
export * from "./validate.ts";
