// Leaves the rows in which the machine was not running out of a training series.
import { isRunning, type RunningCondition } from "../../contracts/running_condition.ts";
import { InputError, type LoadedSeries } from "./input.ts";

/**
 * The rows of `series` in which `running` holds, in order (a stop's rows are cut out, so a
 * window may span a stop's two sides: a few windows in a long history). Throws an
 * {@link InputError} when the condition names no column of the series.
 */
export function runningRowsOnly(
  series: LoadedSeries,
  running: RunningCondition,
): { series: LoadedSeries; stoppedFrames: number } {
  const { values, nFrames, nFeatures } = series;
  const column = series.featureNames.indexOf(running.feature);
  if (column < 0) {
    throw new InputError(
      `'--running': ${JSON.stringify(running.feature)} is not a column of the input`,
    );
  }
  const kept = new Float32Array(values.length);
  let rows = 0;
  for (let t = 0; t < nFrames; t++) {
    const row = values.subarray(t * nFeatures, (t + 1) * nFeatures);
    if (!isRunning(running, row[column])) continue;
    kept.set(row, rows * nFeatures);
    rows++;
  }
  return {
    series: { ...series, values: kept.subarray(0, rows * nFeatures), nFrames: rows },
    stoppedFrames: nFrames - rows,
  };
}
