// Dynamic batching of ready windows into inference calls.
export { Batcher, type BatcherOptions, type ScoredBatch } from "./batcher.ts";
