// Splits a training series into interleaved fit and calibration blocks of whole windows.

export interface WindowSplit {
  windowSize: number;
  blockSize: number;
  /** Start frames of windows used to fit the model. */
  fit: Int32Array;
  /** Start frames of held-out windows used only for calibration. */
  cal: Int32Array;
  /** Frames that belong to fit blocks (for location/scale estimates). */
  fitFrames: Int32Array;
}

/** Smallest number of training frames accepted for a window size. */
export function minFrames(windowSize: number): number {
  return Math.max(100, 20 * windowSize);
}

/**
 * Alternating blocks (even = fit, odd = calibration) so that both halves see every phase of slow
 * cycles; windows never straddle a block boundary, so no held-out value leaks into a fit window.
 */
export function splitWindows(nFrames: number, windowSize: number): WindowSplit {
  if (nFrames < minFrames(windowSize)) {
    throw new RangeError(
      `too few rows: ${nFrames} frames, need at least ${minFrames(windowSize)} for window size ${windowSize}`,
    );
  }
  const blockSize = Math.max(4 * windowSize, Math.min(100, Math.floor(nFrames / 20)));
  const fit: number[] = [];
  const cal: number[] = [];
  const fitFrames: number[] = [];
  for (let b = 0; b * blockSize < nFrames; b++) {
    const start = b * blockSize;
    const end = Math.min(nFrames, start + blockSize);
    const target = b % 2 === 0 ? fit : cal;
    for (let t = start; t + windowSize <= end; t++) target.push(t);
    if (b % 2 === 0) for (let t = start; t < end; t++) fitFrames.push(t);
  }
  return {
    windowSize,
    blockSize,
    fit: Int32Array.from(fit),
    cal: Int32Array.from(cal),
    fitFrames: Int32Array.from(fitFrames),
  };
}
