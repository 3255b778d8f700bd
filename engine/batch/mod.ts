// Batches of ready windows: the one window scorer, and the in-memory batcher that drives it.
export { Batcher, type BatcherOptions } from "./batcher.ts";
export {
  type ScoredBatch,
  type WindowRow,
  WindowScorer,
  type WindowScorerOptions,
} from "./window_scorer.ts";
