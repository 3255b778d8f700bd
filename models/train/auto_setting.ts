// Picks the window size and tail margin for a history by backtesting a few settings on it: a held-out normal stretch and injected anomalies, no labels.
import type { ModelMetadata } from "../../contracts/model.ts";
import type { ScoringModel } from "../../engine/infer/mod.ts";
import type { FeaturewiseKind } from "../featurewise/params.ts";
import { minFrames } from "../featurewise/split.ts";
import {
  TRAIN_DEFAULTS,
  type TrainOptions,
  type TrainResult,
  trainFeaturewise,
} from "../featurewise/train.ts";
import { scoreWindows } from "../reference/mod.ts";
import { type GateSettings, type ModelMetrics, measure } from "../retrain/gate.ts";
import type { Run } from "../retrain/history_data.ts";
import { injectEvents, LEAD_FRAMES, sensorStd } from "../retrain/inject.ts";
import { ANOMALY_KINDS } from "../signal/mod.ts";
import { buildArtifacts } from "./artifacts.ts";

/** One setting the backtest compares. */
export interface AutoCandidate {
  windowSize: number;
  tailMargin: number;
}

/** The settings compared, the defaults first (they win ties). */
export const AUTO_CANDIDATES: readonly AutoCandidate[] = [
  { windowSize: TRAIN_DEFAULTS.windowSize, tailMargin: TRAIN_DEFAULTS.tailMargin },
  { windowSize: 5, tailMargin: 1 },
  { windowSize: 10, tailMargin: 0.5 },
  { windowSize: 10, tailMargin: 1 },
  { windowSize: 15, tailMargin: 0.5 },
  { windowSize: 15, tailMargin: 1 },
  { windowSize: 20, tailMargin: 0.5 },
  { windowSize: 20, tailMargin: 1 },
];

/**
 * Injected anomalies are half the gate's sizes (`ANOMALY_DEFAULTS`): at full size every setting
 * finds nearly all of them, so they cannot tell settings apart; at half size the differences
 * in sensitivity show.
 */
export const AUTO_MAGNITUDE_SCALE = 0.5;

/**
 * A candidate replaces the reference only when it finds more of the injected events at this
 * one-sided significance (paired sign test): a difference the backtest's 100 events could show
 * by chance is no reason to leave the defaults.
 */
export const AUTO_SIGNIFICANCE = 0.05;

/** Share of the history, at its end, held out as the normal stretch the settings are judged on. */
export const AUTO_HOLDOUT_SHARE = 0.2;

/** The engine's default incident settings (contracts/config.ts), used when none are given. */
export const DEFAULT_GATE_SETTINGS: GateSettings = {
  threshold: 0.9,
  confirmK: 2,
  confirmN: 3,
  quietWindows: 30,
};

export interface AutoOptions {
  /** Training options every candidate shares (its window and margin replace theirs). */
  train?: Omit<TrainOptions, "windowSize" | "tailMargin" | "onProgress">;
  candidates?: readonly AutoCandidate[];
  holdoutShare?: number;
  /** Size of the injected anomalies relative to the gate's (default {@link AUTO_MAGNITUDE_SCALE}). */
  magnitudeScale?: number;
  /** Injected anomalies per kind (default 20) and their seed (default 1). */
  eventsPerKind?: number;
  seed?: number;
  settings?: GateSettings;
  /**
   * Turns a trained candidate into a model to score (default: the plain-TypeScript reference
   * scorer, {@link referenceModel}; pass the engine's loader to score the ONNX graph instead).
   */
  load?: (result: TrainResult, meta: ModelMetadata, onnx: Uint8Array) => Promise<ScoringModel>;
  say?: (line: string) => void;
}

/**
 * The fewest frames {@link backtestSettings} can judge any candidate on: what is left after the
 * held-out stretch must still train the smallest candidate window.
 */
export function autoMinFrames(
  candidates: readonly AutoCandidate[] = AUTO_CANDIDATES,
  holdoutShare = AUTO_HOLDOUT_SHARE,
): number {
  const need = Math.min(...candidates.map((c) => minFrames(c.windowSize)));
  let frames = need;
  while (frames - Math.round(holdoutShare * frames) < need) frames++;
  return frames;
}

/** One candidate's backtest: the gate's metrics, or why it could not be trained. */
export interface CandidateResult extends AutoCandidate {
  metrics?: ModelMetrics;
  skipped?: string;
  /** Injected recall averaged over the kinds with events. */
  recall?: number;
  /** Per injected event, in order: 1 when this candidate found it (the same events for every candidate). */
  hits?: Uint8Array;
}

export interface AutoChoice {
  chosen: AutoCandidate;
  reason: string;
  candidates: CandidateResult[];
  holdout: { frames: number; trainFrames: number; events: number };
}

/**
 * A {@link ScoringModel} over the reference scorer: what the backtest scores with by default,
 * so choosing a setting needs neither ONNX Runtime nor a file.
 */
export function referenceModel(result: TrainResult, meta: ModelMetadata): ScoringModel {
  const F = meta.n_features;
  const W = meta.window_size;
  return {
    metadata: meta,
    provider: "cpu",
    outputs: { severity: false, statistic: false },
    windowsPerRun: 64,
    async score(input, batch, output) {
      output.set(scoreWindows(result.params, input.subarray(0, batch * W * F), batch));
    },
    async close() {},
  };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Mean injected recall over the kinds that had events (0 when none had). */
function meanRecall(m: ModelMetrics): number {
  const r = ANOMALY_KINDS.flatMap((k) =>
    m.injected[k].recall === null ? [] : [m.injected[k].recall as number],
  );
  return r.length ? mean(r) : 0;
}

/**
 * Backtests every candidate on `data` (one stream, in time order): each is trained as
 * `npm run train` trains on all but the last `holdoutShare` of the history, and scored by the
 * promotion gate's `measure` on that held-out stretch (false alarms, false incidents) and on
 * the gate's injected anomalies placed in it (`injectEvents`, sized in the held-in part's
 * robust std), each event on its own so that `hits` pairs the candidates event by event. A
 * candidate whose window the held-in part is too short for is skipped.
 */
export async function backtestSettings(
  data: { values: Float32Array; nFrames: number; nFeatures: number },
  options: AutoOptions = {},
): Promise<{ results: CandidateResult[]; holdout: AutoChoice["holdout"] }> {
  const candidates = options.candidates ?? AUTO_CANDIDATES;
  const share = options.holdoutShare ?? AUTO_HOLDOUT_SHARE;
  if (!(share > 0 && share < 1)) {
    throw new RangeError(`'holdoutShare' must be in (0, 1), got ${share}`);
  }
  const { values, nFrames: T, nFeatures: F } = data;
  const held = Math.round(share * T);
  const cut = T - held;
  const frameAt = (t: number) => values.subarray(t * F, (t + 1) * F);
  const history = (from: number, to: number) =>
    Array.from({ length: to - from }, (_, i) => ({
      streamId: "s",
      timestamp: Date.UTC(2024, 0, 1) + (from + i) * 1000,
      session: 0,
      seq: from + i,
      incident: "",
      values: frameAt(from + i),
    }));
  const recent: Run[] = [{ streamId: "s", frames: history(cut, T) }];
  // Injected events sit in the held-out stretch; the lead before each fills windows and levels.
  const lead = Math.min(LEAD_FRAMES, cut);
  const injectRun: Run[] = [{ streamId: "s", frames: history(cut - lead, T) }];
  const scale = options.magnitudeScale ?? AUTO_MAGNITUDE_SCALE;
  // Magnitudes are in units of this std (inject.ts), so scaling it scales every anomaly.
  const std = sensorStd(values.subarray(0, cut * F), cut, F).map((s) => s * scale);
  const maxW = Math.max(...candidates.map((c) => c.windowSize));
  const events =
    lead === LEAD_FRAMES
      ? injectEvents(injectRun, std, {
          perKind: options.eventsPerKind ?? 20,
          seed: options.seed ?? 1,
          windowSize: maxW,
        })
      : [];
  const heldIn = { values: values.slice(0, cut * F), nFrames: cut, nFeatures: F };
  const names = Array.from({ length: F }, (_, f) => `feature_${f}`);
  const settings = options.settings ?? DEFAULT_GATE_SETTINGS;
  const load = options.load ?? (async (r: TrainResult, m: ModelMetadata) => referenceModel(r, m));
  const results: CandidateResult[] = [];
  for (const c of candidates) {
    if (cut < minFrames(c.windowSize)) {
      results.push({
        ...c,
        skipped: `${cut} held-in frames, window ${c.windowSize} needs ${minFrames(c.windowSize)}`,
      });
      continue;
    }
    const kind: FeaturewiseKind = options.train?.kind ?? "featurewise_ocsvm_svdd";
    const result = trainFeaturewise(heldIn, { ...options.train, kind, ...c });
    const { onnx, meta } = buildArtifacts("auto", result, names, { kind: "backtest" });
    const model = await load(result, meta, onnx);
    try {
      const metrics = await measure(model, { recent, confirmed: [], events: [] }, settings);
      // One event at a time, so candidates can be compared event by event (paired).
      const hits = new Uint8Array(events.length);
      for (const [i, event] of events.entries()) {
        const one = await measure(model, { recent: [], confirmed: [], events: [event] }, settings);
        hits[i] = one.injected[event.spec.kind].detected;
        const tally = metrics.injected[event.spec.kind];
        tally.events++;
        tally.detected += hits[i];
      }
      for (const tally of Object.values(metrics.injected)) {
        tally.recall = tally.events ? tally.detected / tally.events : null;
      }
      results.push({ ...c, metrics, recall: meanRecall(metrics), hits });
    } finally {
      await model.close();
    }
    options.say?.(
      `window ${c.windowSize}, tail margin ${c.tailMargin}: ${describe(results.at(-1) as CandidateResult)}`,
    );
  }
  return { results, holdout: { frames: held, trainFrames: cut, events: events.length } };
}

function describe(r: CandidateResult): string {
  if (!r.metrics) return `skipped (${r.skipped})`;
  const m = r.metrics.recent;
  return `false alarms ${m.falseAlarmFramesPer10k.toFixed(0)} / false incidents ${m.falseIncidentsPer10k.toFixed(0)} per 10k, injected recall ${(r.recall as number).toFixed(3)}`;
}

/**
 * One-sided exact sign test (McNemar) on paired events: the chance, were both settings equally
 * good, that `challenger` finds at least as many of the events only one of them finds as it does.
 */
export function pairedPValue(reference: Uint8Array, challenger: Uint8Array): number {
  let gained = 0;
  let lost = 0;
  for (let i = 0; i < reference.length; i++) {
    if (challenger[i] && !reference[i]) gained++;
    else if (reference[i] && !challenger[i]) lost++;
  }
  const n = gained + lost;
  // Binomial(n, 1/2) tail, in logs so that thousands of events neither overflow nor underflow.
  let logC = 0; // log C(n, k), from k = 0
  let p = 0;
  for (let k = 0; k <= n; k++) {
    if (k >= gained) p += Math.exp(logC - n * Math.LN2);
    logC += Math.log(n - k) - Math.log(k + 1);
  }
  return Math.min(1, p);
}

/**
 * The rule: keep the candidates whose false incidents, then false-alarm frames, on the held-out
 * stretch are within the gate's tolerance of the fewest (10 % plus 1 per 10,000). The first of
 * them (the defaults when they are kept) is the reference; another replaces it only when it finds
 * significantly more of the same injected events ({@link pairedPValue} below
 * {@link AUTO_SIGNIFICANCE}), and of those the one that finds the most (the earlier on a tie).
 * A backtest that cannot tell settings apart so keeps the defaults.
 */
export function pickSetting(results: CandidateResult[]): { chosen: AutoCandidate; reason: string } {
  let pool = results.filter((r) => r.metrics);
  if (pool.length === 0) throw new RangeError("no candidate setting could be backtested");
  const near = (best: number, x: number) => x <= best * 1.1 + 1;
  const fi = Math.min(...pool.map((r) => r.metrics!.recent.falseIncidentsPer10k));
  pool = pool.filter((r) => near(fi, r.metrics!.recent.falseIncidentsPer10k));
  const fa = Math.min(...pool.map((r) => r.metrics!.recent.falseAlarmFramesPer10k));
  pool = pool.filter((r) => near(fa, r.metrics!.recent.falseAlarmFramesPer10k));
  const [reference, ...others] = pool;
  const found = (r: CandidateResult) => (r.hits ? r.hits.reduce((a, b) => a + b, 0) : 0);
  const better = others.filter(
    (r) => reference.hits && r.hits && pairedPValue(reference.hits, r.hits) < AUTO_SIGNIFICANCE,
  );
  const most = Math.max(...better.map(found));
  const chosen = better.find((r) => found(r) === most) ?? reference;
  const ref = `window ${reference.windowSize}, tail margin ${reference.tailMargin}`;
  const why =
    chosen === reference
      ? "no setting as quiet finds significantly more injected events"
      : `finds ${most} injected events, ${found(reference)} with ${ref} (p = ${pairedPValue(reference.hits as Uint8Array, chosen.hits as Uint8Array).toFixed(3)})`;
  return {
    chosen: { windowSize: chosen.windowSize, tailMargin: chosen.tailMargin },
    reason: `${describe(chosen)}; ${why}`,
  };
}

/**
 * Chooses the window size and tail margin for `data` by {@link backtestSettings} and
 * {@link pickSetting}: the user's own history decides, no labels needed.
 *
 * @example const { chosen } = await chooseSetting(series); trainFeaturewise(series, { kind, ...chosen });
 */
export async function chooseSetting(
  data: { values: Float32Array; nFrames: number; nFeatures: number },
  options: AutoOptions = {},
): Promise<AutoChoice> {
  const { results, holdout } = await backtestSettings(data, options);
  return { ...pickSetting(results), candidates: results, holdout };
}
