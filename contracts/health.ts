// Health probe bodies of both services (SPEC §4.3).
import * as v from "valibot";

export const liveSchema = v.object({ status: v.literal("ok"), uptime_s: v.number() });

export const EXECUTION_PROVIDERS = ["cpu", "cuda"] as const;

/**
 * Engine readiness: 200 with `status: "ready"`, else 503. What a ready body holds depends on the
 * role: the single-process engine and a scale-out worker have loaded their model (`model`) on an
 * `execution_provider` (`cpu` or `cuda`); an ingest replica runs no inference, so it reports the
 * default model it routes frames for with `execution_provider: null` and `gpu.available: false`.
 */
export const engineReadySchema = v.object({
  status: v.picklist(["ready", "loading", "failed", "draining"]),
  model: v.nullable(
    v.object({
      name: v.string(),
      version: v.string(),
      n_features: v.number(),
      window_size: v.number(),
    }),
  ),
  execution_provider: v.nullable(v.picklist(EXECUTION_PROVIDERS)),
  gpu: v.object({ available: v.boolean(), name: v.optional(v.string()) }),
  queue: v.optional(v.object({ depth: v.number(), capacity: v.number() })),
  error: v.optional(v.string()),
});

/** Backend readiness: 200 when the database answers. */
export const backendReadySchema = v.object({
  status: v.picklist(["ready", "unavailable", "draining"]),
  database: v.object({ kind: v.picklist(["postgres", "pglite"]), reachable: v.boolean() }),
  error: v.optional(v.string()),
});

export type Live = v.InferOutput<typeof liveSchema>;
export type EngineReady = v.InferOutput<typeof engineReadySchema>;
export type BackendReady = v.InferOutput<typeof backendReadySchema>;
