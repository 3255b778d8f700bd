// What every method compared on the real datasets implements: fit on a training history, score a run.

import type { ModelMetadata } from "../../../contracts/model.ts";

/** A row-major `[rows, cols]` matrix of raw sensor values. */
export interface Matrix {
  rows: number;
  cols: number;
  values: Float64Array;
}

/** One scored window, in stream order, for consumers that follow the stream (the incident tracker). */
export interface ScoredWindow {
  /** Row (within the run) of the window's newest frame. */
  row: number;
  /** The window's raw values `[window, features]`, oldest frame first (valid during the call). */
  input: Float32Array;
  /** Per-feature scores in [0, 1] (float32, as the graph returns them). */
  scores: Float32Array;
  /** Per-feature severity when the model reports one. */
  severity?: Float32Array;
  /** Per-feature index of the statistic that decided the score, when the model reports it. */
  statistic?: ArrayLike<number>;
}

/** Per test row (rows `testStart ..` of the run): the alarm at the default point and a ranking score. */
export interface RunScores {
  alarm: Uint8Array;
  /** Higher = more anomalous; `-Infinity` where the method has no opinion yet (e.g. a median filling up). */
  score: Float64Array;
}

export interface FittedDetector {
  /** The model's metadata when the method is an ONNX model (the incident tracker needs it). */
  readonly metadata?: ModelMetadata;
  /**
   * Scores `run` from row `testStart` on. Rows before `testStart` may fill the first windows
   * (the stream is continuous); `visit` sees every scored window in stream order.
   */
  scoreRun(run: Matrix, testStart: number, visit?: (w: ScoredWindow) => void): Promise<RunScores>;
  close?(): Promise<void>;
}

export interface Detector {
  readonly name: string;
  readonly description: string;
  fit(train: Matrix, featureNames: readonly string[]): Promise<FittedDetector>;
}
