// Frame and episode metrics of the real-data protocols: pooled confusion, F1/FAR/MAR, delays, budgets.

export interface Confusion {
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

export const emptyConfusion = (): Confusion => ({ tp: 0, fp: 0, tn: 0, fn: 0 });

/** Adds `alarm` vs `label` (same length) to `c`. */
export function addConfusion(
  c: Confusion,
  alarm: ArrayLike<number>,
  label: ArrayLike<number>,
): Confusion {
  if (alarm.length !== label.length)
    throw new RangeError(`alarm has ${alarm.length} rows, label ${label.length}`);
  for (let i = 0; i < alarm.length; i++) {
    if (label[i]) {
      if (alarm[i]) c.tp++;
      else c.fn++;
    } else if (alarm[i]) c.fp++;
    else c.tn++;
  }
  return c;
}

/** SKAB's definitions: F1 = TP / (TP + (FN + FP) / 2), FAR = FP / (FP + TN), MAR = FN / (FN + TP). */
export function rates(c: Confusion): { f1: number; far: number; mar: number } {
  const div = (a: number, b: number) => (b === 0 ? 0 : a / b);
  return {
    f1: div(c.tp, c.tp + (c.fn + c.fp) / 2),
    far: div(c.fp, c.fp + c.tn),
    mar: div(c.fn, c.fn + c.tp),
  };
}

/** Maximal runs of labelled rows: `[start, end)` pairs. */
export function episodes(label: ArrayLike<number>): [number, number][] {
  const out: [number, number][] = [];
  let start = -1;
  for (let i = 0; i <= label.length; i++) {
    const on = i < label.length && label[i] !== 0;
    if (on && start < 0) start = i;
    if (!on && start >= 0) {
      out.push([start, i]);
      start = -1;
    }
  }
  return out;
}

/**
 * Per episode: detected when some alarm falls inside it; delay = rows from its start to the
 * first alarm inside it (undefined when missed).
 */
export function episodeDetections(
  alarm: ArrayLike<number>,
  label: ArrayLike<number>,
): { start: number; end: number; delay: number | undefined }[] {
  return episodes(label).map(([start, end]) => {
    let delay: number | undefined;
    for (let i = start; i < end; i++) {
      if (alarm[i]) {
        delay = i - start;
        break;
      }
    }
    return { start, end, delay };
  });
}

/** Median of a list (mean of the two middle values when even); undefined when empty. */
export function median(xs: readonly number[]): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

/**
 * Threshold for a false-alarm budget: the smallest normal-frame score `v` such that at most
 * `budget` of the normal frames score strictly above it (frames alarm when score > v). Ties at
 * `v` stay quiet, so a score that saturates can spend less than the budget, never more.
 */
export function budgetThreshold(normalScores: ArrayLike<number>, budget: number): number {
  if (!(budget >= 0 && budget < 1)) throw new RangeError(`budget must be in [0, 1), got ${budget}`);
  const s = Float64Array.from(normalScores).sort();
  if (s.length === 0) throw new RangeError("no normal frames to set a budget on");
  const k = Math.max(0, Math.ceil((1 - budget) * s.length) - 1);
  return s[k];
}

/** Alarms of `score > threshold`. */
export function alarmsAbove(score: ArrayLike<number>, threshold: number): Uint8Array {
  const a = new Uint8Array(score.length);
  for (let i = 0; i < score.length; i++) a[i] = score[i] > threshold ? 1 : 0;
  return a;
}

/** Rounds for reports (ratios to 4 decimals). */
export const round4 = (x: number) => Math.round(x * 1e4) / 1e4;
