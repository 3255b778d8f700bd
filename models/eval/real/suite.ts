// The SKAB and Tennessee Eastman suites of `npm run eval`: every method on the same frames, one report.
import { join } from "node:path";
import { TRAIN_DEFAULTS } from "../../featurewise/train.ts";
import { loadSkab, loadTep, TEP_UNDETECTABLE } from "./datasets.ts";
import type { Detector } from "./detector.ts";
import {
  type IncidentMetrics,
  type IncidentSettings,
  type IncidentSpan,
  incidentMetrics,
  incidentTable,
} from "./incidents.ts";
import { round4 } from "./metrics.ts";
import { type OursTrainOptions, ours, oursAuto } from "./ours.ts";
import { hotellingT2, pcaT2Q, zScore } from "./peers.ts";
import {
  type OperatingPoint,
  operatingPoint,
  type RunResult,
  runDetector,
  skabTasks,
  summariseMethod,
  type Task,
  tepFaultTable,
  tepTasks,
  withoutUndetectable,
} from "./protocol.ts";

export interface RealSuiteOptions {
  /** Dataset root holding `skab/` and `tep/`. */
  datasets: string;
  /** Training options of "ours" for this dataset (a documented flag; the same for every file). */
  train: OursTrainOptions;
  /** The engine's incident settings the tracker runs with. */
  incidents: IncidentSettings;
  log: (line: string) => void;
  /** Only the first N rows of every file (tests). */
  limitRows?: number;
}

/** The published SKAB outlier-detection leaderboard (F1, FAR %, MAR %), from SKAB's README. */
export const SKAB_LEADERBOARD: { method: string; f1: number; far: number; mar: number }[] = [
  { method: "Conv-AE", f1: 0.78, far: 13.55, mar: 28.02 },
  { method: "MSET", f1: 0.78, far: 39.73, mar: 14.13 },
  { method: "T-squared+Q (PCA)", f1: 0.76, far: 26.62, mar: 24.92 },
  { method: "LSTM-AE", f1: 0.74, far: 29.96, mar: 25.92 },
  { method: "T-squared", f1: 0.66, far: 19.21, mar: 42.6 },
  { method: "Isolation forest", f1: 0.29, far: 2.56, mar: 82.89 },
];

export const BUDGETS = [0.01, 0.05] as const;

/** Name of our row trained with every default, beside "ours" when a dataset flag sets options. */
export const OURS_DEFAULTS = "ours, defaults";

/** Name of our row whose window and tail margin `npm run train -- --auto` chose per history. */
export const OURS_AUTO = "ours, auto";

/**
 * The methods of a suite with the window their incidents open on. With dataset options, "ours"
 * is trained with them and a second row keeps every default, both from the same run; a third,
 * `ours, auto`, chooses its setting per training history (its window is known once it is fitted).
 */
function methods(train: OursTrainOptions): { detector: Detector; window: number | null }[] {
  const W = (o: OursTrainOptions) => o.windowSize ?? TRAIN_DEFAULTS.windowSize;
  const flagged = Object.keys(train).length > 0;
  return [
    { detector: ours(train), window: W(train) },
    ...(flagged ? [{ detector: ours({}, OURS_DEFAULTS), window: W({}) }] : []),
    { detector: oursAuto(OURS_AUTO), window: null },
    ...[hotellingT2(), pcaT2Q(), zScore()].map((detector) => ({ detector, window: W(train) })),
  ];
}

interface MethodRun {
  name: string;
  description: string;
  seconds: number;
  results: RunResult[];
  /** Incident metrics, for the methods the engine can run (ONNX models). */
  incidents?: IncidentMetrics;
  /** The settings `ours, auto` chose, with how many training histories chose each. */
  chosen?: Record<string, number>;
}

async function runAll(
  tasks: Task[],
  o: RealSuiteOptions,
  suite: string,
  periodMs: number,
): Promise<MethodRun[]> {
  const out: MethodRun[] = [];
  // Incidents open on windows of the model's size.
  for (const { detector: d, window: W } of methods(o.train)) {
    const t0 = performance.now();
    const spans = new Map<string, IncidentSpan[]>();
    const results = await runDetector(d, tasks, { periodMs, settings: o.incidents, spans });
    const seconds = (performance.now() - t0) / 1000;
    o.log(`[eval] ${suite}: ${d.name} in ${seconds.toFixed(1)} s`);
    const m: MethodRun = { name: d.name, description: d.description, seconds, results };
    const runs = tasks.flatMap((t) => t.runs);
    let window: number | ((run: string) => number) = W ?? TRAIN_DEFAULTS.windowSize;
    if ("chosen" in d) {
      // One choice per task, in task order: each run opens incidents on its task's window.
      const chosen = d.chosen as { windowSize: number; tailMargin: number }[];
      const byRun = new Map(
        tasks.flatMap((t, i) => t.runs.map((r) => [r.name, chosen[i].windowSize] as const)),
      );
      window = (run: string) => byRun.get(run) ?? TRAIN_DEFAULTS.windowSize;
      m.chosen = {};
      for (const c of chosen) {
        const key = `window ${c.windowSize}, tail margin ${c.tailMargin}`;
        m.chosen[key] = (m.chosen[key] ?? 0) + 1;
      }
      o.log(`[eval] ${suite}: ${d.name} chose ${JSON.stringify(m.chosen)}`);
    }
    if (spans.size > 0 || d.name.startsWith("ours")) {
      m.incidents = incidentMetrics(
        spans,
        runs.map((r, i) => ({
          name: r.name,
          label: r.label,
          testStart: r.testStart,
          alarm: results[i].alarm,
        })),
        window,
      );
    }
    out.push(m);
  }
  return out;
}

/** The incident table: one row per method the tracker ran on. */
function incidentLines(all: MethodRun[], s: IncidentSettings): string[] {
  return [
    "",
    `Incidents (the engine's tracker, one window at a time; confirm ${s.INCIDENT_CONFIRM_K} of ${s.INCIDENT_CONFIRM_N}, resolve after ${s.INCIDENT_QUIET_WINDOWS} quiet windows; delays in rows; a false incident opens on a window with no anomalous row; normal frames: windows with no anomalous row):`,
    "",
    ...incidentTable(all.flatMap((m) => (m.incidents ? [{ name: m.name, m: m.incidents }] : []))),
  ];
}

/** What `ours, auto` chose, per training history. */
function chosenLines(all: MethodRun[]): string[] {
  return all.flatMap((m) =>
    m.chosen
      ? [
          "",
          `${m.name} chose (training histories): ${Object.entries(m.chosen)
            .map(([k, n]) => `${k}: ${n}`)
            .join("; ")}`,
        ]
      : [],
  );
}

const pct = (x: number) => (x * 100).toFixed(2);
const num = (x: number | undefined) => (x === undefined ? "–" : String(x));

function pointCells(p: OperatingPoint): string[] {
  return [
    p.f1.toFixed(3),
    pct(p.far),
    pct(p.mar),
    `${p.episodes_detected}/${p.episodes}`,
    num(p.median_delay),
  ];
}

export interface SuiteReport {
  doc: Record<string, unknown>;
  text: string;
  /** Per method, the per-run results (for the incident metrics). */
  runs: MethodRun[];
}

/** SKAB, leaderboard protocol: per file 400 training rows, the rest pooled into one confusion matrix. */
export async function runSkabSuite(o: RealSuiteOptions): Promise<SuiteReport> {
  const t0 = performance.now();
  const runs = await loadSkab(join(o.datasets, "skab"), { limitRows: o.limitRows });
  o.log(`[eval] skab: ${runs.length} runs loaded`);
  // One row per second (SKAB's sampling).
  const all = await runAll(skabTasks(runs), o, "skab", 1000);
  const methodsDoc: Record<string, unknown> = {};
  const lines = [
    `SKAB (${runs.length} runs; per file the first 400 rows train, the rest is the test; pooled; frames alarm at each method's default rule):`,
    "",
    "| method | F1 | FAR % | MAR % | episodes | median delay (rows) | F1 @1 % | episodes @1 % | F1 @5 % | episodes @5 % | seconds |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const m of all) {
    const s = summariseMethod(m.results, BUDGETS);
    methodsDoc[m.name] = {
      description: m.description,
      seconds: round4(m.seconds),
      ...s,
      ...(m.incidents ? { incidents: m.incidents } : {}),
      ...(m.chosen ? { chosen: m.chosen } : {}),
    };
    const b1 = s.budgets["1%"];
    const b5 = s.budgets["5%"];
    lines.push(
      `| ${m.name} | ${pointCells(s.default).join(" | ")} | ${b1.f1.toFixed(3)} | ${b1.episodes_detected} | ${b5.f1.toFixed(3)} | ${b5.episodes_detected} | ${m.seconds.toFixed(1)} |`,
    );
  }
  lines.push(...incidentLines(all, o.incidents), ...chosenLines(all));
  lines.push("", "Published leaderboard (SKAB README, outlier detection): F1 / FAR % / MAR %");
  for (const r of SKAB_LEADERBOARD) lines.push(`- ${r.method}: ${r.f1} / ${r.far} / ${r.mar}`);
  const seconds = (performance.now() - t0) / 1000;
  return {
    doc: {
      protocol:
        "SKAB leaderboard: per file rows 0-399 train, rows 400.. test; pooled confusion matrix of the anomaly label",
      runs: runs.length,
      test_rows: all[0].results.reduce((a, r) => a + r.label.length, 0),
      budgets: BUDGETS,
      methods: methodsDoc,
      leaderboard: SKAB_LEADERBOARD,
      incident_settings: o.incidents,
      seconds: round4(seconds),
    },
    text: lines.join("\n"),
    runs: all,
  };
}

/** TEP: train on d00; test on d00_te and d01..d21_te (faulty from sample 160). */
export async function runTepSuite(o: RealSuiteOptions): Promise<SuiteReport> {
  const t0 = performance.now();
  const tep = await loadTep(join(o.datasets, "tep"), { limitRows: o.limitRows });
  o.log(`[eval] tep: ${tep.tests.length} test runs loaded`);
  // One sample every 3 minutes (TEP's sampling).
  const all = await runAll(tepTasks(tep), o, "tep", 180_000);
  const methodsDoc: Record<string, unknown> = {};
  const lines = [
    "Tennessee Eastman (train d00; test d00_te + 21 fault runs, faulty from sample 160). FAR on the normal samples (d00_te and the first 160 of each run):",
    "",
    "| method | FAR % | MAR % | F1 | faults detected | F1 w/o 3,9,15 | F1 @1 % | FAR @1 % | faults detected @1 % | F1 @1 % w/o 3,9,15 | fault 5 rate | seconds |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  const perFault: Record<string, Record<string, unknown>> = {};
  for (const m of all) {
    const s = summariseMethod(m.results, BUDGETS);
    const defaultTable = tepFaultTable(
      m.results,
      m.results.map((r) => r.alarm),
    );
    const b1 = s.budgets["1%"];
    const thr1 = b1.threshold as number;
    const alarms1 = m.results.map((r) => Uint8Array.from(r.score, (x) => (x > thr1 ? 1 : 0)));
    const table1 = tepFaultTable(m.results, alarms1);
    const detectable = withoutUndetectable(m.results);
    const keep = new Set(detectable.map((r) => r.name));
    const dDefault = operatingPoint(
      detectable,
      detectable.map((r) => r.alarm),
    );
    const d1 = operatingPoint(
      detectable,
      m.results.flatMap((r, i) => (keep.has(r.name) ? [alarms1[i]] : [])),
      thr1,
    );
    methodsDoc[m.name] = {
      description: m.description,
      seconds: round4(m.seconds),
      ...s,
      without_undetectable: { default: dDefault, "1%": d1 },
      faults: { default: defaultTable, "1%": table1 },
      ...(m.incidents ? { incidents: m.incidents } : {}),
      ...(m.chosen ? { chosen: m.chosen } : {}),
    };
    for (const row of defaultTable) {
      perFault[row.fault] ??= {};
      perFault[row.fault][m.name] = row.detection_rate;
      perFault[row.fault][`${m.name}@1%`] = table1.find(
        (t) => t.fault === row.fault,
      )?.detection_rate;
    }
    const f5 = defaultTable.find((r) => r.fault === 5)?.detection_rate;
    lines.push(
      `| ${m.name} | ${pct(s.default.far)} | ${pct(s.default.mar)} | ${s.default.f1.toFixed(3)} | ${s.default.episodes_detected}/${s.default.episodes} | ${dDefault.f1.toFixed(3)} | ${b1.f1.toFixed(3)} | ${pct(b1.far)} | ${b1.episodes_detected}/${b1.episodes} | ${d1.f1.toFixed(3)} | ${num(f5)} | ${m.seconds.toFixed(1)} |`,
    );
  }
  lines.push(...incidentLines(all, o.incidents), ...chosenLines(all));
  const names = all.map((m) => m.name);
  lines.push(
    "",
    `Detection rate per fault (default point; @1 %: at the 1 % budget). Faults ${TEP_UNDETECTABLE.join(", ")} are known to be undetectable:`,
    "",
    `| fault | ${names.map((n) => `${n} | ${n} @1 %`).join(" | ")} |`,
    `| --- | ${names.map(() => "--- | ---").join(" | ")} |`,
  );
  for (const [fault, row] of Object.entries(perFault)) {
    const mark = TEP_UNDETECTABLE.includes(Number(fault) as 3) ? " (undetectable)" : "";
    lines.push(
      `| ${fault}${mark} | ${names.map((n) => `${num(row[n] as number)} | ${num(row[`${n}@1%`] as number)}`).join(" | ")} |`,
    );
  }
  const seconds = (performance.now() - t0) / 1000;
  return {
    doc: {
      protocol:
        "TEP: train on d00 (transposed, 500 samples); test d00_te (960 normal) and dNN_te (faulty from sample 160); each test file is its own stream",
      incident_settings: o.incidents,
      budgets: BUDGETS,
      methods: methodsDoc,
      seconds: round4(seconds),
    },
    text: lines.join("\n"),
    runs: all,
  };
}
