// Splits a training series in time: the model is fitted on the first part, calibrated on the rest.

export interface WindowSplit {
  windowSize: number;
  /** First frame of the calibration part (= number of fit frames). */
  calStart: number;
  /** Start frames of windows used to fit the model. */
  fit: Int32Array;
  /** Start frames of held-out windows, all later than every fit frame, used only for calibration. */
  cal: Int32Array;
  /** Frames that belong to the fit part (for location/scale estimates). */
  fitFrames: Int32Array;
}

/** Default share of the history, at its end, held out for calibration. */
export const DEFAULT_CAL_FRACTION = 0.6;

/** Smallest number of training frames accepted for a window size. */
export function minFrames(windowSize: number): number {
  return Math.max(100, 20 * windowSize);
}

/**
 * Fit on the first `1 - calFraction` of the history, calibrate on the windows that follow it.
 * Calibrating on later data is what a deployed model meets: whatever drift, slow cycle phase or
 * change of regime the history holds beyond the fit part widens the fitted tails, instead of
 * being averaged away as an interleaved split would. No window straddles the boundary, so no
 * calibration value leaks into a fit window.
 */
export function splitWindows(
  nFrames: number,
  windowSize: number,
  calFraction = DEFAULT_CAL_FRACTION,
): WindowSplit {
  if (nFrames < minFrames(windowSize)) {
    throw new RangeError(
      `too few rows: ${nFrames} frames, need at least ${minFrames(windowSize)} for window size ${windowSize}`,
    );
  }
  if (!(calFraction > 0 && calFraction < 1)) {
    throw new RangeError(`calibration fraction must lie in (0, 1), got ${calFraction}`);
  }
  // Both parts keep at least 10 windows' worth of frames.
  const minPart = 10 * windowSize;
  const calStart = Math.min(
    nFrames - minPart,
    Math.max(minPart, Math.round(nFrames * (1 - calFraction))),
  );
  const fit: number[] = [];
  const cal: number[] = [];
  for (let t = 0; t + windowSize <= calStart; t++) fit.push(t);
  for (let t = calStart; t + windowSize <= nFrames; t++) cal.push(t);
  return {
    windowSize,
    calStart,
    fit: Int32Array.from(fit),
    cal: Int32Array.from(cal),
    fitFrames: Int32Array.from({ length: calStart }, (_, t) => t),
  };
}
