// Gathers an incident alert's context: each listed sensor's history before onset, its related sensors, the fault kind.
import {
  type FaultKind,
  FLOAT32_MIN_MAGNITUDE,
  type History,
  type RelatedSensor,
} from "../../contracts/alert.ts";
import { FLOAT32_MAX } from "../../contracts/frame.ts";
import {
  type FaultEvidence,
  faultKind,
  KIND_SENSORS,
  kindReadings,
} from "../../scoring/fault_kind.ts";
import type { IncidentEvent } from "../../scoring/incident_tracker.ts";
import {
  type CrossSubspace,
  relatedSensors,
  standardisedDeviation,
} from "../../scoring/related_sensors.ts";
import type { HistorySpan, HistoryStore } from "./history_store.ts";

/** What an alert adds to its listed sensors' evidence, and the incident's kind. */
export interface AlertEvidence {
  kind?: FaultKind;
  sensors: Map<number, { history?: History; related?: RelatedSensor[] }>;
}

export interface IncidentEvidenceOptions {
  store: HistoryStore;
  featureNames: readonly string[];
  windowSize: number;
  typical?: { readonly low: readonly number[]; readonly high: readonly number[] };
  /** The model's running level (`baseline`), when it has one. */
  baseline?: { alpha: number; span: number; features: readonly number[] };
  /** The model's cross-sensor subspace, when its graph has one. */
  subspace?: CrossSubspace;
  /** Bytes of `history`, then of related readings, per alert (`EVIDENCE_ALERT_MAX_BYTES`). */
  maxBytes: number;
  /** Partners named per sensor. */
  relatedCount?: number;
  /** Most severe listed sensors that get `related` (each costs `n_features × cols` multiply-adds). */
  relatedSensors?: number;
}

/**
 * Readings arrive as float32: seven significant digits print them as sent (as build_alert does).
 * At the ends of float32's range seven digits can fall outside it (the smallest subnormal,
 * 2^-149, prints as 1.401298e-45, below it), and the backend refuses the whole alert for one
 * such number: the float32 itself is kept there, which JSON prints exactly.
 */
function reading(x: number): number {
  const r = Number(x.toPrecision(7));
  const m = Math.abs(r);
  return r === 0 || (m >= FLOAT32_MIN_MAGNITUDE && m <= FLOAT32_MAX) ? r : Math.fround(x);
}
const iso = (ms: number) => new Date(ms).toISOString();
/** `,"history":` around each history in the alert body. */
const FIELD_BYTES = 12;
/** `,"values":` around each related sensor's readings. */
const VALUES_FIELD_BYTES = 10;

/**
 * Level before each of `values`' readings (model `baseline`): the weighted mean of the previous
 * `span` readings, newest first, as `LevelBaseline` computes it; `null` while fewer than `span`
 * earlier readings are kept (the level then depends on readings no longer here).
 */
export function levelSeries(
  values: ArrayLike<number>,
  alpha: number,
  span: number,
): (number | null)[] {
  const out: (number | null)[] = [];
  for (let i = 0; i < values.length; i++) {
    if (i < span) {
      out.push(null);
      continue;
    }
    let sum = 0;
    let weight = 0;
    let w = 1;
    for (let j = 1; j <= span; j++, w *= 1 - alpha) {
      const x = values[i - j];
      if (Number.isFinite(x)) {
        sum += w * x;
        weight += w;
      }
    }
    out.push(weight > 0 ? Math.fround(sum / weight) : null);
  }
  return out;
}

/**
 * Builds the context of each `opened`/`updated` alert from the history store: for each listed
 * sensor (most severe first) its kept readings up to the alert's frame with the onset marked,
 * while the alert's `history` bytes stay under `maxBytes`; for the `relatedSensors` most severe,
 * their partners from the subspace and how far each moved over the last window; and the kind.
 * With room left under `maxBytes` once every history that fits is in, each partner of a sensor
 * with a history gets its readings over that history (`values`), in ranking order (sensors most
 * severe first, each one's partners closest first), each whole; from the first that would pass
 * the cap the rest go without. A partner listed in the alert with its own history needs none.
 * A `resolved` alert repeats the incident's last kind and carries no history. Runs per alert,
 * never per window.
 */
export class IncidentEvidence {
  readonly #o: IncidentEvidenceOptions;
  readonly #baseline: Set<number>;

  /** The store its histories are read from. */
  get history(): HistoryStore {
    return this.#o.store;
  }

  /** Sensors of the model it was built for. */
  get nFeatures(): number {
    return this.#o.featureNames.length;
  }

  constructor(options: IncidentEvidenceOptions) {
    this.#o = options;
    this.#baseline = new Set(options.baseline?.features ?? []);
  }

  build(event: IncidentEvent): AlertEvidence {
    const sensors: AlertEvidence["sensors"] = new Map();
    if (event.event === "resolved") return { kind: event.kind, sensors };
    const o = this.#o;
    const span = o.store.upTo(event.streamId, event.timestamp);
    let onset = -1;
    if (span) {
      for (let i = span.length - 1; i >= 0; i--) {
        if (span.time(i) === event.startedAt) {
          onset = i;
          break;
        }
        if (span.time(i) < event.startedAt) break;
      }
    }
    const regular = span ? steady(span) : undefined;
    let bytes = 0;
    let room = true;
    const facts: FaultEvidence[] = [];
    const relatedFor = o.relatedSensors ?? 8;
    for (const [n, e] of event.sensors.entries()) {
      const f = e.feature_idx;
      const entry: { history?: History; related?: RelatedSensor[] } = {};
      let values: number[] | undefined;
      // Readings are gathered for a history that may still fit and for the sensors the kind
      // looks at; past both, a long list costs nothing more here.
      if (span && onset >= 0 && (room || n < KIND_SENSORS)) {
        values = new Array(span.length);
        for (let i = 0; i < span.length; i++) values[i] = reading(span.value(i, f));
        if (room) {
          const h: History = {
            start: iso(span.time(0)),
            step_ms: regular!.step,
            values,
            onset,
          };
          if (!regular!.steady)
            h.timestamps = Array.from({ length: span.length }, (_, i) => iso(span.time(i)));
          if (o.baseline && this.#baseline.has(f)) {
            h.level = levelSeries(values, o.baseline.alpha, o.baseline.span).map((x) =>
              x === null ? null : reading(x),
            );
          }
          const size = JSON.stringify(h).length + FIELD_BYTES;
          // The most severe sensors keep their history whole; from the first that no longer
          // fits, the rest go without (a prefix of the ranking, never a cut history).
          if (bytes + size <= o.maxBytes) {
            bytes += size;
            entry.history = h;
          } else room = false;
        }
      }
      if (o.subspace && span && n < relatedFor) entry.related = this.#related(span, f);
      if (entry.history || entry.related) sensors.set(f, entry);
      const low = o.typical?.low[f];
      const high = o.typical?.high[f];
      const at = e.level ?? 0;
      if (n >= KIND_SENSORS) continue;
      facts.push({
        readings: values ? kindReadings(values, onset, o.windowSize) : e.window,
        typical:
          Number.isFinite(low) && Number.isFinite(high)
            ? { low: at + low!, high: at + high! }
            : undefined,
        related: entry.related,
      });
    }
    if (span && bytes < o.maxBytes) this.#relatedValues(span, event, sensors, o.maxBytes - bytes);
    return { kind: faultKind(facts), sensors };
  }

  /** Adds partners' readings over their sensor's history within `room` bytes (see `build`). */
  #relatedValues(
    span: HistorySpan,
    event: IncidentEvent,
    sensors: AlertEvidence["sensors"],
    room: number,
  ): void {
    for (const e of event.sensors) {
      const entry = sensors.get(e.feature_idx);
      if (!entry?.history || !entry.related) continue;
      for (const r of entry.related) {
        if (sensors.get(r.feature_idx)?.history) continue;
        const values = new Array<number | null>(span.length);
        for (let i = 0; i < span.length; i++) {
          const x = span.value(i, r.feature_idx);
          values[i] = Number.isFinite(x) ? reading(x) : null;
        }
        const size = JSON.stringify(values).length + VALUES_FIELD_BYTES;
        if (size > room) return;
        room -= size;
        r.values = values;
      }
    }
  }

  #related(span: HistorySpan, f: number): RelatedSensor[] {
    const o = this.#o;
    const sub = o.subspace!;
    const W = Math.min(o.windowSize, span.length);
    const out: RelatedSensor[] = [];
    for (const p of relatedSensors(sub, f, o.relatedCount ?? 4)) {
      const j = p.feature_idx;
      const window = new Array<number>(W);
      for (let i = 0; i < W; i++) window[i] = span.value(span.length - W + i, j);
      let level = 0;
      if (o.baseline && this.#baseline.has(j)) {
        // The level its newest reading was judged against, from the kept readings before it;
        // with too few kept, the mean of those kept stands in for it.
        const all = Array.from({ length: span.length }, (_, i) => span.value(i, j));
        const levels = levelSeries(all, o.baseline.alpha, o.baseline.span);
        level = levels[levels.length - 1] ?? all.reduce((s, x) => s + x, 0) / all.length;
      }
      const moved = standardisedDeviation(sub, j, window, level);
      out.push({
        feature_idx: j,
        feature: o.featureNames[j],
        weight: Math.round(p.weight * 1e4) / 1e4,
        moved: Number.isFinite(moved) ? Math.round(moved * 1000) / 1000 : 0,
      });
    }
    return out;
  }
}

/** Whether a span's frames came at one step, and that step (else the median spacing). */
function steady(span: HistorySpan): { steady: boolean; step: number } {
  if (span.length < 2) return { steady: true, step: 0 };
  const first = span.time(1) - span.time(0);
  const gaps: number[] = [];
  let same = true;
  for (let i = 1; i < span.length; i++) {
    const d = span.time(i) - span.time(i - 1);
    gaps.push(d);
    if (d !== first) same = false;
  }
  if (same) return { steady: true, step: first };
  gaps.sort((a, b) => a - b);
  return { steady: false, step: gaps[gaps.length >> 1] };
}
