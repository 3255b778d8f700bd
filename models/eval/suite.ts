// One evaluation suite: builds the scorers for a plant and runs the clean and labelled segments.

import type { LinearParams } from "../featurewise/params.ts";
import {
  ANOMALY_DEFAULTS,
  ANOMALY_KINDS,
  type AnomalySpec,
  createPlant,
  mixSeed,
  type Plant,
  Rng,
} from "../signal/mod.ts";
import type { LoadedSeries } from "../train/input.ts";
import {
  type CleanTally,
  evaluateClean,
  evaluateEvents,
  type KindTally,
  type WindowTap,
} from "./run.ts";
import {
  gaussianTwoSided,
  type Scorer,
  uncalibratedLinearScorer,
  zScoreScorer,
} from "./scorers.ts";

export interface SuiteOptions {
  plantSeed: number;
  nFeatures: number;
  windowSize: number;
  cleanFrames: number;
  eventsPerKind: number;
  evalSeed: number;
  /** Events running at once on disjoint features. */
  concurrency: number;
  log: (line: string) => void;
  /** Sees every scored window, segment by segment in stream order (each segment is one stream). */
  tap?: (segment: string, ...window: Parameters<WindowTap>) => void;
}

/** One stream of the suite: its frames and which of them carry an injected anomaly. */
export interface Segment {
  name: string;
  frames: number;
  label: Uint8Array;
}

export interface SuiteResult {
  scorers: { name: string; description: string; threshold: number }[];
  clean: CleanTally[];
  kinds: KindTally[][];
  segments: Segment[];
}

/** The two baselines, built from the same training series as the models. */
export function baselineScorers(
  series: LoadedSeries,
  linear: LinearParams,
  pTarget: number,
  W: number,
): Scorer[] {
  const F = series.nFeatures;
  const mean = new Float64Array(F);
  const sq = new Float64Array(F);
  for (let t = 0; t < series.nFrames; t++) {
    for (let f = 0; f < F; f++) {
      const x = series.values[t * F + f];
      mean[f] += x;
      sq[f] += x * x;
    }
  }
  const std = new Float64Array(F);
  for (let f = 0; f < F; f++) {
    mean[f] /= series.nFrames;
    std[f] = Math.sqrt(Math.max(sq[f] / series.nFrames - mean[f] ** 2, 1e-24));
  }
  return [
    uncalibratedLinearScorer(linear, 0.9),
    zScoreScorer(mean, std, W, gaussianTwoSided(pTarget)),
  ];
}

/** Injects `count` events of `kind` in slots of `concurrency` events on disjoint features. */
export function scheduleEvents(
  plant: Plant,
  kind: (typeof ANOMALY_KINDS)[number],
  count: number,
  concurrency: number,
  seed: number,
  W: number,
): { events: AnomalySpec[]; frames: number } {
  const rng = new Rng(seed);
  const slot = ANOMALY_DEFAULTS[kind].duration[1] + W + 20;
  const events: AnomalySpec[] = [];
  const F = plant.nFeatures;
  let start = 30;
  while (events.length < count) {
    const n = Math.min(concurrency, count - events.length);
    const chosen = new Set<number>();
    for (let e = 0; e < n; e++) {
      const k = 1 + rng.int(Math.min(4, Math.floor(F / (2 * n)) || 1));
      const features: number[] = [];
      while (features.length < k) {
        const f = rng.int(F);
        if (!chosen.has(f)) {
          chosen.add(f);
          features.push(f);
        }
      }
      const spec = randomAnomalyFor(
        rng,
        plant,
        kind,
        start + rng.int(5),
        features.sort((a, b) => a - b),
      );
      plant.inject(spec);
      events.push(spec);
    }
    start += slot;
  }
  return { events, frames: start + 10 };
}

function randomAnomalyFor(
  rng: Rng,
  _plant: Plant,
  kind: (typeof ANOMALY_KINDS)[number],
  start: number,
  features: number[],
): AnomalySpec {
  const d = ANOMALY_DEFAULTS[kind];
  const sign = kind === "noise_burst" || kind === "stuck" || rng.uniform() < 0.5 ? 1 : -1;
  const magnitude = sign * (d.magnitude[0] + (d.magnitude[1] - d.magnitude[0]) * rng.uniform());
  const duration = d.duration[0] + rng.int(d.duration[1] - d.duration[0] + 1);
  return { kind, features, start, duration, magnitude };
}

/** Runs the clean segment and one labelled segment per anomaly kind, each on a fresh noise seed. */
export async function runSuite(scorers: Scorer[], o: SuiteOptions): Promise<SuiteResult> {
  const W = o.windowSize;
  const cleanPlant = createPlant({
    nFeatures: o.nFeatures,
    seed: o.plantSeed,
    noiseSeed: mixSeed(o.evalSeed, 1),
  });
  o.log(`[eval] clean segment: ${o.cleanFrames} windows x ${o.nFeatures} features`);
  const tapFor = (segment: string): WindowTap | undefined => {
    const tap = o.tap;
    return tap ? (...w) => tap(segment, ...w) : undefined;
  };
  const clean = await evaluateClean(cleanPlant, o.cleanFrames, W, scorers, tapFor("clean"));
  const segments: Segment[] = [
    { name: "clean", frames: o.cleanFrames + W - 1, label: new Uint8Array(o.cleanFrames + W - 1) },
  ];
  const kinds: KindTally[][] = scorers.map(() => []);
  for (const [k, kind] of ANOMALY_KINDS.entries()) {
    const plant = createPlant({
      nFeatures: o.nFeatures,
      seed: o.plantSeed,
      noiseSeed: mixSeed(o.evalSeed, 100 + k),
    });
    const { events, frames } = scheduleEvents(
      plant,
      kind,
      o.eventsPerKind,
      o.concurrency,
      mixSeed(o.evalSeed, 200 + k),
      W,
    );
    o.log(`[eval] ${kind}: ${events.length} events over ${frames} frames`);
    const label = new Uint8Array(frames + W - 1);
    for (const ev of events)
      label.fill(1, ev.start, Math.min(label.length, ev.start + ev.duration));
    segments.push({ name: kind, frames: frames + W - 1, label });
    const tallies = await evaluateEvents(plant, kind, events, frames, W, scorers, tapFor(kind));
    for (const [s, t] of tallies.entries()) kinds[s].push(t);
  }
  return {
    scorers: scorers.map((s) => ({
      name: s.name,
      description: s.description,
      threshold: s.threshold,
    })),
    clean,
    kinds,
    segments,
  };
}
