// Runs every method over a dataset's tasks in stream order and summarises each the same way.
import type { LabelledRun, TepData } from "./datasets.ts";
import { TEP_UNDETECTABLE } from "./datasets.ts";
import type { Detector, Matrix, ScoredWindow } from "./detector.ts";
import { IncidentRecorder, type IncidentSettings, type IncidentSpan } from "./incidents.ts";
import {
  addConfusion,
  alarmsAbove,
  budgetThreshold,
  type Confusion,
  emptyConfusion,
  episodeDetections,
  median,
  rates,
  round4,
} from "./metrics.ts";

/** One training history and the runs scored by the model fitted on it. */
export interface Task {
  train: Matrix;
  featureNames: string[];
  runs: { name: string; data: Matrix; label: Uint8Array; testStart: number }[];
}

/** One method's output on one run: per test row the label, alarm and ranking score. */
export interface RunResult {
  name: string;
  label: Uint8Array;
  alarm: Uint8Array;
  score: Float64Array;
}

/** SKAB's leaderboard protocol: per file, the first 400 rows train, the rest is the test. */
export function skabTasks(runs: LabelledRun[]): Task[] {
  return runs.map((r) => {
    const cols = r.featureNames.length;
    return {
      train: { rows: r.trainRows, cols, values: r.values.subarray(0, r.trainRows * cols) },
      featureNames: r.featureNames,
      runs: [
        {
          name: r.name,
          data: { rows: r.rows, cols, values: r.values },
          label: r.label,
          testStart: r.trainRows,
        },
      ],
    };
  });
}

/** TEP: train on d00; test on d00_te and the 21 fault runs, each its own stream from its first sample. */
export function tepTasks(tep: TepData): Task[] {
  const cols = tep.featureNames.length;
  return [
    {
      train: { rows: tep.train.rows, cols, values: tep.train.values },
      featureNames: tep.featureNames,
      runs: tep.tests.map((t) => ({
        name: t.name,
        data: { rows: t.rows, cols, values: t.values },
        label: t.label,
        testStart: 0,
      })),
    },
  ];
}

/**
 * Fits `detector` per task and scores its runs in order. When `incidents` is given and the
 * method is an ONNX model, every window it scores goes to the engine's incident tracker (one
 * `observe` per window, each run its own stream; rows are `periodMs` apart) and the incidents
 * land in `incidents.spans`.
 */
export async function runDetector(
  detector: Detector,
  tasks: Task[],
  incidents?: {
    periodMs: number;
    settings: IncidentSettings;
    spans: Map<string, IncidentSpan[]>;
  },
): Promise<RunResult[]> {
  const out: RunResult[] = [];
  for (const task of tasks) {
    const fitted = await detector.fit(task.train, task.featureNames);
    const recorder =
      incidents && fitted.metadata
        ? new IncidentRecorder(
            fitted.metadata,
            incidents.periodMs,
            incidents.settings,
            incidents.spans,
          )
        : undefined;
    try {
      for (const run of task.runs) {
        const visit = recorder
          ? (w: ScoredWindow) => recorder.observe(run.name, w.row, w, w.input)
          : undefined;
        const s = await fitted.scoreRun(run.data, run.testStart, visit);
        recorder?.finish(run.name);
        out.push({
          name: run.name,
          label: run.label.subarray(run.testStart),
          alarm: s.alarm,
          score: s.score,
        });
      }
    } finally {
      await fitted.close?.();
    }
  }
  return out;
}

export interface OperatingPoint {
  /** Frame score above which a frame alarms (undefined: the method's own default rule). */
  threshold?: number;
  f1: number;
  far: number;
  mar: number;
  confusion: Confusion;
  episodes: number;
  episodes_detected: number;
  median_delay: number | undefined;
}

/** Pooled confusion and episode detection over `results` with `alarms` per run. */
export function operatingPoint(
  results: RunResult[],
  alarms: Uint8Array[],
  threshold?: number,
): OperatingPoint {
  const c = emptyConfusion();
  const delays: number[] = [];
  let total = 0;
  let found = 0;
  results.forEach((r, i) => {
    addConfusion(c, alarms[i], r.label);
    for (const e of episodeDetections(alarms[i], r.label)) {
      total++;
      if (e.delay !== undefined) {
        found++;
        delays.push(e.delay);
      }
    }
  });
  const { f1, far, mar } = rates(c);
  return {
    ...(threshold === undefined ? {} : { threshold }),
    f1: round4(f1),
    far: round4(far),
    mar: round4(mar),
    confusion: c,
    episodes: total,
    episodes_detected: found,
    median_delay: median(delays),
  };
}

/** Normal test frames' scores, pooled over runs. */
export function normalScores(results: RunResult[]): Float64Array {
  const xs: number[] = [];
  for (const r of results)
    for (let i = 0; i < r.label.length; i++) if (!r.label[i]) xs.push(r.score[i]);
  return Float64Array.from(xs);
}

/** The default point plus one point per false-alarm budget (threshold = quantile of normal frame scores). */
export function summariseMethod(
  results: RunResult[],
  budgets: readonly number[],
): { default: OperatingPoint; budgets: Record<string, OperatingPoint> } {
  const normal = normalScores(results);
  const points: Record<string, OperatingPoint> = {};
  for (const b of budgets) {
    const thr = budgetThreshold(normal, b);
    points[`${b * 100}%`] = operatingPoint(
      results,
      results.map((r) => alarmsAbove(r.score, thr)),
      thr,
    );
  }
  return {
    default: operatingPoint(
      results,
      results.map((r) => r.alarm),
    ),
    budgets: points,
  };
}

export interface TepFaultRow {
  fault: number;
  detection_rate: number;
  /** False alarms on the run's 160 normal samples. */
  false_alarms: number;
  delay: number | undefined;
}

/** Per fault: detection rate (alarmed faulty samples / faulty samples) and delay from the fault's onset. */
export function tepFaultTable(results: RunResult[], alarms: Uint8Array[]): TepFaultRow[] {
  const rows: TepFaultRow[] = [];
  results.forEach((r, i) => {
    const fault = Number(/^d(\d+)/.exec(r.name)?.[1] ?? Number.NaN);
    if (!(fault > 0)) return;
    const c = addConfusion(emptyConfusion(), alarms[i], r.label);
    const e = episodeDetections(alarms[i], r.label)[0];
    rows.push({
      fault,
      detection_rate: round4(c.tp / (c.tp + c.fn)),
      false_alarms: c.fp,
      delay: e?.delay,
    });
  });
  return rows;
}

/** TEP results without the faults known to be undetectable (3, 9, 15). */
export function withoutUndetectable(results: RunResult[]): RunResult[] {
  const skip = new Set(TEP_UNDETECTABLE.map((f) => `d${String(f).padStart(2, "0")}_te`));
  return results.filter((r) => !skip.has(r.name));
}
