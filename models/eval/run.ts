// Streams plant frames through every scorer in batches and tallies detection metrics per scorer.
import { StreamFeatures, WindowShape } from "../../scoring/window_features.ts";
import type { AnomalyKind, AnomalySpec, Plant } from "../signal/mod.ts";
import type { Scorer } from "./scorers.ts";

export interface CleanTally {
  frames: number;
  alertFrames: number;
  flaggedFeatureWindows: number;
  /** Per clean window, its highest feature score (for re-thresholding a scorer). */
  maxima: Float32Array;
}

export interface KindTally {
  kind: AnomalyKind;
  events: number;
  detected: number;
  delays: number[];
  affectedFeatures: number;
  detectedFeatures: number;
  truePositives: number;
  falsePositives: number;
  /** Affected features / detected ones per sensor family (0 gaussian, 1 heavy, 2 quantised). */
  familyAffected: number[];
  familyDetected: number[];
  /** Per event, the highest score any of its features got in a window that contains it. */
  eventMax: Float32Array;
}

/** A tally of `events` events of `kind` with nothing counted yet. */
export function emptyKindTally(kind: AnomalyKind, events: number): KindTally {
  return {
    kind,
    events,
    detected: 0,
    delays: [],
    affectedFeatures: 0,
    detectedFeatures: 0,
    truePositives: 0,
    falsePositives: 0,
    familyAffected: [0, 0, 0],
    familyDetected: [0, 0, 0],
    eventMax: new Float32Array(events).fill(Number.NEGATIVE_INFINITY),
  };
}

/** A scored window as a streaming consumer (the incident tracker) sees it. */
export type WindowTap = (
  t: number,
  s: number,
  scores: Float32Array,
  window: Float32Array,
  extras: { severity?: Float32Array; statistic?: Float64Array },
) => void;

/**
 * Scores every window ending at frames `windowSize-1 .. windowSize-1+nWindows-1` of `plant`.
 * `visit(t, s, scores)` is called per window end `t` and scorer index `s` with that window's
 * scores; `tap`, when given, right after it with the raw window and the model's extra outputs.
 * A scorer with running levels (`baseline`) gets its windows from the engine's
 * scoring layer's `StreamFeatures` (as the engine's streams), fed every frame in order from the first.
 */
export async function streamWindows(
  plant: Plant,
  nWindows: number,
  windowSize: number,
  scorers: Scorer[],
  visit: (t: number, s: number, scores: Float32Array) => void,
  batchSize = 64,
  tap?: WindowTap,
): Promise<void> {
  const F = plant.nFeatures;
  const W = windowSize;
  const ring = Array.from({ length: W }, () => new Float32Array(F));
  const batch = new Float32Array(batchSize * W * F);
  // Per scorer with running levels: its stream of transformed windows and their batch.
  const own = scorers.map((s) =>
    s.baseline?.features.length
      ? {
          windows: new StreamFeatures(
            new WindowShape({ windowSize: W, frameSize: F, baseline: s.baseline }),
          ),
          batch: new Float32Array(batchSize * W * F),
        }
      : undefined,
  );
  const batchOf = (s: number) => own[s]?.batch ?? batch;
  const ends: number[] = [];
  const flush = async () => {
    const all: Float32Array[] = [];
    const extras: { severity?: Float32Array; statistic?: Float64Array }[] = [];
    for (const [s, scorer] of scorers.entries()) {
      all.push(await scorer.score(batchOf(s), ends.length));
      extras.push({ ...scorer.extras });
    }
    // Window by window (then scorer by scorer), so visitors see time move forward only.
    for (let b = 0; b < ends.length; b++) {
      for (let s = 0; s < scorers.length; s++) {
        const row = all[s].subarray(b * F, (b + 1) * F);
        visit(ends[b], s, row);
        if (tap) {
          const e = extras[s];
          // The raw window (readings as they arrived), whatever the scorer was fed.
          tap(ends[b], s, row, batch.subarray(b * W * F, (b + 1) * W * F), {
            severity: e.severity?.subarray(b * F, (b + 1) * F),
            statistic: e.statistic?.subarray(b * F, (b + 1) * F),
          });
        }
      }
    }
    ends.length = 0;
  };
  const total = W - 1 + nWindows;
  for (let i = 0; i < total; i++) {
    const t = plant.frameIndex;
    plant.next(ring[t % W]);
    const b = ends.length;
    for (const o of own) o?.windows.push(ring[t % W], o.batch.subarray(b * W * F));
    if (i < W - 1) continue;
    for (let j = 0; j < W; j++) batch.set(ring[(t - W + 1 + j) % W], (b * W + j) * F);
    ends.push(t);
    if (ends.length === batchSize) await flush();
  }
  if (ends.length > 0) await flush();
}

/** Counts frames where any feature of the clean plant is flagged. */
export async function evaluateClean(
  plant: Plant,
  nWindows: number,
  windowSize: number,
  scorers: Scorer[],
  tap?: WindowTap,
): Promise<CleanTally[]> {
  const tallies: CleanTally[] = scorers.map(() => ({
    frames: 0,
    alertFrames: 0,
    flaggedFeatureWindows: 0,
    maxima: new Float32Array(nWindows),
  }));
  await streamWindows(
    plant,
    nWindows,
    windowSize,
    scorers,
    (_t, s, scores) => {
      const thr = scorers[s].threshold;
      let flagged = 0;
      let max = Number.NEGATIVE_INFINITY;
      for (let f = 0; f < scores.length; f++) {
        if (scores[f] >= thr) flagged++;
        if (scores[f] > max) max = scores[f];
      }
      const tally = tallies[s];
      tally.maxima[tally.frames] = max;
      tally.frames++;
      tally.flaggedFeatureWindows += flagged;
      if (flagged > 0) tally.alertFrames++;
    },
    64,
    tap,
  );
  return tallies;
}

/**
 * Plays `events` (already injected into `plant`, disjoint features when concurrent) and measures
 * event recall, detection delay and flagged-feature precision. A window ending at `t` counts for an
 * event when it contains one of its frames: `start <= t <= start + duration + W - 2`.
 */
export async function evaluateEvents(
  plant: Plant,
  kind: AnomalyKind,
  events: AnomalySpec[],
  nWindows: number,
  windowSize: number,
  scorers: Scorer[],
  tap?: WindowTap,
): Promise<KindTally[]> {
  const F = plant.nFeatures;
  const W = windowSize;
  const family = plant.sensors.family;
  const owner = new Int32Array(F).fill(-1);
  const firstHit = scorers.map(() => new Int32Array(events.length).fill(-1));
  const featureHit = scorers.map(() => events.map(() => new Set<number>()));
  const tallies = scorers.map(() => emptyKindTally(kind, events.length));
  const order = events.map((_, i) => i).sort((a, b) => events[a].start - events[b].start);
  let nextEvent = 0;
  let live: number[] = [];
  let ownerTime = -1;
  const updateOwners = (t: number) => {
    if (t === ownerTime) return;
    ownerTime = t;
    while (nextEvent < order.length && events[order[nextEvent]].start <= t)
      live.push(order[nextEvent++]);
    const still: number[] = [];
    for (const e of live) {
      const ev = events[e];
      const inside = t <= ev.start + ev.duration + W - 2;
      for (const f of ev.features) owner[f] = inside ? e : -1;
      if (inside) still.push(e);
    }
    live = still;
  };
  await streamWindows(
    plant,
    nWindows,
    W,
    scorers,
    (t, s, scores) => {
      updateOwners(t);
      const thr = scorers[s].threshold;
      const tally = tallies[s];
      for (let f = 0; f < F; f++) {
        const e = owner[f];
        if (e >= 0 && scores[f] > tally.eventMax[e]) tally.eventMax[e] = scores[f];
        if (scores[f] < thr) continue;
        if (e < 0) {
          tally.falsePositives++;
          continue;
        }
        tally.truePositives++;
        if (firstHit[s][e] < 0) firstHit[s][e] = t;
        featureHit[s][e].add(f);
      }
    },
    64,
    tap,
  );
  tallies.forEach((tally, s) => {
    events.forEach((ev, e) => {
      if (firstHit[s][e] >= 0) {
        tally.detected++;
        tally.delays.push(firstHit[s][e] - ev.start);
      }
      for (const f of ev.features) {
        tally.affectedFeatures++;
        tally.familyAffected[family[f]]++;
        if (featureHit[s][e].has(f)) {
          tally.detectedFeatures++;
          tally.familyDetected[family[f]]++;
        }
      }
    });
  });
  return tallies;
}
