// Turns a flagged sensor's evidence history into what a console chart draws: times, readings, level, onset.
import type { History } from "../../contracts/alert.ts";

/** What the page hands its chart script: seconds since the epoch (uPlot's time unit) per point. */
export interface ChartSeries {
  t: number[];
  values: number[];
  /** The running level per point (null where unknown); absent when the history has none. */
  level?: (number | null)[];
  /** Time of the onset reading, in the same unit as `t`. */
  onset: number;
  /** How many readings the history had (more than `t.length` when thinned). */
  readings: number;
}

// Six significant digits are more than a chart's pixels can show, and halve the page's size.
const round = (x: number) => Number(x.toPrecision(6));

/** Epoch ms of reading `i`: its own timestamp when frames were irregular, else start + i·step. */
export function readingMs(h: History, i: number): number {
  return h.timestamps ? Date.parse(h.timestamps[i]) : Date.parse(h.start) + i * h.step_ms;
}

const timeOf = (h: History, i: number) => readingMs(h, i) / 1000;

/**
 * The history as chart points, thinned to at most `maxPoints` (a chart a few hundred pixels wide
 * cannot show more; a day at 1 Hz is 86,400 readings). Thinning keeps each bucket's lowest and
 * highest reading, in time order, so a spike or a dip stays visible, and always keeps the onset
 * reading and the latest one.
 *
 * @example chartSeries({ start, step_ms: 1000, values: [1, 2, 9], onset: 2 }, 500).onset; // start + 2 s
 */
export function chartSeries(h: History, maxPoints = 2000): ChartSeries {
  const n = h.values.length;
  const keep: number[] = [];
  if (n <= maxPoints) {
    for (let i = 0; i < n; i++) keep.push(i);
  } else {
    // Two points per bucket, minus room for the onset and the latest reading.
    const buckets = Math.max(1, Math.floor((maxPoints - 2) / 2));
    const size = n / buckets;
    for (let b = 0; b < buckets; b++) {
      const from = Math.floor(b * size);
      const to = Math.min(n, Math.floor((b + 1) * size));
      let lo = from;
      let hi = from;
      for (let i = from + 1; i < to; i++) {
        if (h.values[i] < h.values[lo]) lo = i;
        if (h.values[i] > h.values[hi]) hi = i;
      }
      keep.push(Math.min(lo, hi));
      if (hi !== lo) keep.push(Math.max(lo, hi));
    }
    keep.push(h.onset, n - 1);
    keep.sort((a, b) => a - b);
  }
  const unique = keep.filter((i, k) => k === 0 || keep[k - 1] !== i);
  const out: ChartSeries = {
    // Milliseconds are the finest step a timestamp carries.
    t: unique.map((i) => Math.round(timeOf(h, i) * 1000) / 1000),
    values: unique.map((i) => round(h.values[i])),
    onset: timeOf(h, h.onset),
    readings: n,
  };
  const level = h.level;
  if (level) out.level = unique.map((i) => (level[i] == null ? null : round(level[i])));
  return out;
}

/** The lowest and highest of `values[from, to)`, or null when the range is empty. */
export function rangeOf(values: number[], from: number, to: number): [number, number] | null {
  if (to <= from) return null;
  let lo = values[from];
  let hi = values[from];
  for (let i = from + 1; i < to; i++) {
    if (values[i] < lo) lo = values[i];
    if (values[i] > hi) hi = values[i];
  }
  return [lo, hi];
}
