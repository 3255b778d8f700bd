// Groups a stream's anomalous windows into incidents (opened → updated → resolved); pure, no I/O, no clock.
import { createHash } from "node:crypto";
import type { FaultKind } from "../contracts/alert.ts";
import type { EngineConfig } from "../contracts/config.ts";

/** What the engine knows of one flagged sensor in one window (the alert's per-sensor evidence). */
export interface SensorEvidence {
  feature_idx: number;
  /** Calibrated score in [0, 1]. */
  score: number;
  /** -log10 tail probability; ranks sensors where the score saturates at 1. */
  severity: number;
  /** Index into the model's statistic names, or -1 when the model reports none. */
  statistic: number;
  /** The window of raw readings the model saw, oldest first (its last value is the reading). */
  window: readonly number[];
  /**
   * For a sensor with a running level (model `baseline`): the level its newest reading was
   * judged against; its typical range is then around that level.
   */
  level?: number;
}

/** One scored window of a stream, in stream order (timestamps strictly increase per stream). */
export interface ObservedWindow {
  streamId: string;
  /** Epoch ms of the window's newest frame: the tracker's only notion of time. */
  timestamp: number;
  /** Every flagged sensor of the window (any order); empty for a quiet window. */
  flagged: ArrayLike<number>;
  /**
   * Evidence for the flagged sensors that rank highest (at most `maxFeatures`, by descending
   * severity); sensors beyond it are still counted through `flagged`.
   */
  evidence: readonly SensorEvidence[];
}

/** A lifecycle step of an incident, to be turned into one alert. */
export interface IncidentEvent {
  event: "opened" | "updated" | "resolved";
  incidentId: string;
  streamId: string;
  /** Timestamp of the incident's first anomalous window. */
  startedAt: number;
  /** Timestamp of the window that caused this event (for a stale resolution: the last seen). */
  timestamp: number;
  /** Distinct sensors flagged in the incident so far (never decreases). */
  sensorCount: number;
  /** The incident's sensors with their peak evidence, by descending severity, capped. */
  sensors: SensorEvidence[];
  maxSeverity: number;
  /** Why a `resolved` happened: quiet windows, or the stream stopped sending. */
  reason?: "quiet" | "stale";
  /** The incident's fault kind as last set by `classify` (none before its first). */
  kind?: FaultKind;
}

export interface IncidentTrackerOptions {
  /** Sensors per window (the model's `n_features`). */
  nFeatures: number;
  /** Model version: part of every incident id. */
  modelVersion: string;
  /** Flagged windows needed among the last `confirmN` to open an incident (k of n). */
  confirmK: number;
  confirmN: number;
  /** Consecutive quiet windows that resolve an open incident. */
  quietWindows: number;
  /** Least stream time between two `updated` events of one incident (ms). */
  updateMinMs: number;
  /** Rise of the incident's max severity (in -log10 units) that is worth an `updated`. */
  updateSeverityRise: number;
  /** Sensors listed (with evidence) per event: `MAX_ALERT_FEATURES`. */
  maxFeatures: number;
}

/** A stream's tracker state as JSON: what `IncidentStateStore` keeps across restarts. */
export interface StreamSnapshot {
  v: 1;
  /** Timestamp of the newest window observed. */
  last: number;
  /** Confirmation ring: timestamps of the last `confirmN` windows, 0 for a quiet one. */
  recent: number[];
  /**
   * Sensors flagged by the hits in the ring while confirming (before `opened`), with peak
   * evidence: their union.
   */
  pending?: { bits: string; peak: SensorEvidence[]; maxSeverity: number };
  /**
   * While confirming with two or more hits in the ring: each hit's own sensors and evidence, so
   * a hit's sensors leave the confirming set when the hit leaves the ring. Without it (one hit,
   * or a snapshot saved before it was kept) `pending` belongs to the newest hit in the ring.
   */
  hits?: { t: number; bits: string; peak: SensorEvidence[]; maxSeverity: number }[];
  incident?: {
    id: string;
    startedAt: number;
    bits: string;
    count: number;
    peak: SensorEvidence[];
    maxSeverity: number;
    quiet: number;
    emittedCount: number;
    emittedSeverity: number;
    emittedAt: number;
    kind?: FaultKind;
  };
}

interface Union {
  bits: Uint32Array;
  count: number;
  /** Peak evidence per sensor, pruned to the `maxFeatures` most severe when it doubles. */
  peak: Map<number, SensorEvidence>;
  maxSeverity: number;
}

interface OpenIncident extends Union {
  id: string;
  startedAt: number;
  quiet: number;
  emittedCount: number;
  emittedSeverity: number;
  emittedAt: number;
  kind?: FaultKind;
}

/** A flagged window in the confirmation ring, while no incident is open. */
interface Hit {
  t: number;
  /** Its flagged sensors: a bitset when `dense`, else their sorted distinct indices. */
  sensors: Uint32Array;
  dense: boolean;
  /** Its evidence, one per sensor at its peak: the `maxFeatures` most severe. */
  peak: SensorEvidence[];
  maxSeverity: number;
}

interface StreamState {
  last: number;
  recent: number[];
  /** The hits of `recent` (those in the ring, oldest first) while no incident is open. */
  hits: Hit[];
  incident: OpenIncident | undefined;
}

// Fixed namespace of our name-based (v5) UUIDs, so ids are the same on every engine.
const NAMESPACE = Uint8Array.from(
  "6f1e2c3a9b8d4e7fa1c2d3e4f5a6b7c8".match(/../g)!.map((h) => Number.parseInt(h, 16)),
);

/**
 * A name-based UUID (RFC 9562 version 5) of `parts`: the same parts give the same id on any
 * engine, so a window scored twice (replay after a restart, takeover) yields the same alert id.
 */
export function deterministicUuid(...parts: (string | number)[]): string {
  const h = createHash("sha1").update(NAMESPACE).update(parts.join("\u001f")).digest();
  h[6] = (h[6] & 0x0f) | 0x50;
  h[8] = (h[8] & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function checkInt(name: string, value: number, min: number, max: number) {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`'${name}' must be an integer ${min}..${max}, got ${value}`);
  }
}

const bySeverity = (a: SensorEvidence, b: SensorEvidence) =>
  b.severity - a.severity || b.score - a.score || a.feature_idx - b.feature_idx;

function toBase64(bits: Uint32Array): string {
  const bytes = new Uint8Array(bits.buffer, bits.byteOffset, bits.byteLength);
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000)
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

function fromBase64(text: string, words: number): Uint32Array {
  const s = atob(text);
  const bits = new Uint32Array(words);
  const bytes = new Uint8Array(bits.buffer);
  for (let i = 0; i < Math.min(s.length, bytes.length); i++) bytes[i] = s.charCodeAt(i);
  return bits;
}

/**
 * Per stream, turns scored windows into incident events. A window is anomalous when it flags
 * any sensor. An incident opens when `confirmK` of the last `confirmN` windows are anomalous
 * (1 of 1: at once); its start is the first anomalous window of that run, and its sensors are
 * those of the anomalous windows in the ring (one that left the ring is no part of it). While
 * open, every flagged sensor joins it (a bitset: the count is exact at any scale) and keeps its
 * peak evidence (the `maxFeatures` most severe are kept, so memory is bounded); `updated` is
 * emitted when sensors joined or the max severity rose by `updateSeverityRise` since the last
 * event, at most once per `updateMinMs` of stream time; `resolved` after `quietWindows`
 * consecutive quiet windows. Deterministic: the same windows give the same events and ids.
 *
 * @example
 * const tracker = new IncidentTracker({ nFeatures, modelVersion, confirmK: 1, confirmN: 1, ... });
 * for (const event of tracker.observe({ streamId, timestamp, flagged, evidence })) send(event);
 */
export class IncidentTracker {
  #o: IncidentTrackerOptions;
  readonly #words: number;
  readonly #streams = new Map<string, StreamState>();

  constructor(options: IncidentTrackerOptions) {
    checkInt("nFeatures", options.nFeatures, 1, 10_000_000);
    checkInt("INCIDENT_CONFIRM_N", options.confirmN, 1, 64);
    checkInt("INCIDENT_CONFIRM_K", options.confirmK, 1, options.confirmN);
    checkInt("INCIDENT_QUIET_WINDOWS", options.quietWindows, 1, 1_000_000);
    checkInt("MAX_ALERT_FEATURES", options.maxFeatures, 1, 100_000);
    if (!(options.updateMinMs >= 0)) {
      throw new RangeError(`'INCIDENT_UPDATE_MIN_MS' must be >= 0, got ${options.updateMinMs}`);
    }
    if (!(options.updateSeverityRise >= 0)) {
      throw new RangeError(
        `'INCIDENT_UPDATE_SEVERITY_RISE' must be >= 0, got ${options.updateSeverityRise}`,
      );
    }
    this.#o = options;
    this.#words = Math.ceil(options.nFeatures / 32);
  }

  /** Streams with an open incident. */
  get openIncidents(): number {
    let n = 0;
    for (const s of this.#streams.values()) if (s.incident) n++;
    return n;
  }

  /** True when the tracker holds state for the stream (an open or a confirming incident). */
  has(streamId: string): boolean {
    return this.#streams.has(streamId);
  }

  /** Streams the tracker holds state for (open or confirming incidents). */
  streams(): string[] {
    return [...this.#streams.keys()];
  }

  /**
   * Feeds the next window of a stream; returns the events it causes (usually none). A window
   * not newer than the stream's last one is ignored (a replayed window changes nothing).
   */
  observe(window: ObservedWindow): IncidentEvent[] {
    const { streamId, timestamp, flagged } = window;
    let s = this.#streams.get(streamId);
    if (s && timestamp <= s.last) return [];
    const anomalous = flagged.length > 0;
    if (!s) {
      if (!anomalous) return [];
      s = { last: 0, recent: [], hits: [], incident: undefined };
      this.#streams.set(streamId, s);
    }
    s.last = timestamp;
    s.recent.push(anomalous ? timestamp : 0);
    if (s.recent.length > this.#o.confirmN) s.recent.shift();
    // A hit that left the ring takes its sensors out of the confirming set.
    while (s.hits.length > 0 && !s.recent.includes(s.hits[0].t)) s.hits.shift();
    const events: IncidentEvent[] = [];
    const inc = s.incident;
    if (inc) {
      if (anomalous) {
        inc.quiet = 0;
        this.#merge(inc, window);
        const joined = inc.count > inc.emittedCount;
        const rose = inc.maxSeverity >= inc.emittedSeverity + this.#o.updateSeverityRise;
        if ((joined || rose) && timestamp - inc.emittedAt >= this.#o.updateMinMs) {
          events.push(this.#emit(s, streamId, inc, "updated", timestamp));
        }
      } else if (++inc.quiet >= this.#o.quietWindows) {
        events.push(this.#resolve(s, streamId, inc, timestamp, "quiet"));
      }
    } else if (anomalous) {
      const hits = s.recent.filter((t) => t > 0);
      s.hits.push(this.#hit(window));
      if (hits.length >= this.#o.confirmK) {
        const startedAt = hits[0];
        // The incident's sensors are those of the hits in the ring: sensors of hits that left it
        // are not this incident's (sporadic hits a ring apart would otherwise pile up).
        const opened: OpenIncident = {
          ...this.#pendingUnion(s),
          id: deterministicUuid("incident", streamId, startedAt, this.#o.modelVersion),
          startedAt,
          quiet: 0,
          emittedCount: 0,
          emittedSeverity: 0,
          emittedAt: timestamp,
        };
        s.hits = [];
        s.incident = opened;
        events.push(this.#emit(s, streamId, opened, "opened", timestamp));
      }
    }
    this.#forgetIfIdle(streamId, s);
    return events;
  }

  /** The model version new incidents' ids derive from (a hot swap changes it; open ones keep theirs). */
  useModelVersion(version: string): void {
    this.#o = { ...this.#o, modelVersion: version };
  }

  /**
   * Resolves the stream's open incident now (the stream stopped sending: the engine calls this
   * after `INCIDENT_STALE_MS` without a window) and forgets the stream.
   */
  expire(streamId: string): IncidentEvent[] {
    const s = this.#streams.get(streamId);
    if (!s) return [];
    const events = s.incident ? [this.#resolve(s, streamId, s.incident, s.last, "stale")] : [];
    this.#streams.delete(streamId);
    return events;
  }

  /**
   * Sets the fault kind of the stream's open incident (the alert path decides it from the
   * evidence of its `opened` and `updated` events); later events, its `resolved` too, carry it,
   * and the snapshot keeps it. Nothing happens without an open incident, nor, with `incidentId`,
   * when the open one is another: a batch's events are classified after the tracker made them
   * all, by when the incident judged may have resolved and the stream opened the next.
   */
  classify(streamId: string, kind: FaultKind, incidentId?: string): void {
    const inc = this.#streams.get(streamId)?.incident;
    if (inc && (incidentId === undefined || inc.id === incidentId)) inc.kind = kind;
  }

  /** The stream's state as JSON, or undefined when the tracker holds nothing for it. */
  snapshot(streamId: string): StreamSnapshot | undefined {
    const s = this.#streams.get(streamId);
    if (!s) return undefined;
    const snap: StreamSnapshot = { v: 1, last: s.last, recent: [...s.recent] };
    if (!s.incident && s.hits.length > 0) {
      const p = this.#pendingUnion(s);
      snap.pending = { bits: toBase64(p.bits), peak: this.#top(p), maxSeverity: p.maxSeverity };
      if (s.hits.length > 1) {
        snap.hits = s.hits.map((h) => ({
          t: h.t,
          bits: toBase64(this.#bitsOf(h)),
          peak: [...h.peak],
          maxSeverity: h.maxSeverity,
        }));
      }
    }
    const i = s.incident;
    if (i) {
      snap.incident = {
        id: i.id,
        startedAt: i.startedAt,
        bits: toBase64(i.bits),
        count: i.count,
        peak: this.#top(i),
        maxSeverity: i.maxSeverity,
        quiet: i.quiet,
        emittedCount: i.emittedCount,
        emittedSeverity: i.emittedSeverity,
        emittedAt: i.emittedAt,
      };
      if (i.kind) snap.incident.kind = i.kind;
    }
    return snap;
  }

  /**
   * True when every sensor the snapshot holds is one of this tracker's `nFeatures`: a snapshot
   * saved by an engine before it kept its model's sensor set says nothing else of them.
   */
  fits(snap: StreamSnapshot): boolean {
    const n = this.#o.nFeatures;
    const within = (bits: string, peak: SensorEvidence[]) => {
      if (peak.some((e) => !(e.feature_idx >= 0 && e.feature_idx < n))) return false;
      const s = atob(bits);
      for (let b = 0; b < s.length; b++) {
        const byte = s.charCodeAt(b);
        if (byte !== 0 && b * 8 + 31 - Math.clz32(byte) >= n) return false;
      }
      return true;
    };
    const { pending: p, incident: i, hits } = snap;
    return (
      (!p || within(p.bits, p.peak)) &&
      (!i || within(i.bits, i.peak)) &&
      (hits ?? []).every((h) => within(h.bits, h.peak))
    );
  }

  /** Restores a stream from `snapshot` (at start-up, before its first window). */
  restore(streamId: string, snap: StreamSnapshot): void {
    if (snap?.v !== 1) throw new TypeError(`unknown incident snapshot of stream ${streamId}`);
    const union = (bits: string, peak: SensorEvidence[], maxSeverity: number, count?: number) => {
      const u: Union = {
        bits: fromBase64(bits, this.#words),
        count: 0,
        peak: new Map(peak.map((e) => [e.feature_idx, e])),
        maxSeverity,
      };
      u.count = count ?? u.bits.reduce((n, w) => n + popcount(w), 0);
      return u;
    };
    const p = snap.pending;
    const i = snap.incident;
    const recent = snap.recent.slice(-this.#o.confirmN);
    const hits: Hit[] = [];
    if (!i) {
      const saved = new Map((snap.hits ?? []).map((h) => [h.t, h]));
      for (const t of recent) {
        if (t <= 0) continue;
        const h = saved.get(t);
        hits.push(this.#savedHit(t, h?.bits, h?.peak ?? [], h?.maxSeverity ?? 0));
      }
      // One hit, or a snapshot saved before hits were kept one by one: the union is the newest's.
      if (!snap.hits && p && hits.length > 0) {
        hits[hits.length - 1] = this.#savedHit(hits.at(-1)!.t, p.bits, p.peak, p.maxSeverity);
      }
    }
    this.#streams.set(streamId, {
      last: snap.last,
      recent,
      hits,
      incident: i
        ? {
            ...union(i.bits, i.peak, i.maxSeverity, i.count),
            id: i.id,
            startedAt: i.startedAt,
            quiet: i.quiet,
            emittedCount: i.emittedCount,
            emittedSeverity: i.emittedSeverity,
            emittedAt: i.emittedAt,
            kind: i.kind,
          }
        : undefined,
    });
  }

  #union(): Union {
    return { bits: new Uint32Array(this.#words), count: 0, peak: new Map(), maxSeverity: 0 };
  }

  /** A window's hit: its sensors (sparse while fewer than a bitset's words) and evidence. */
  #hit(window: ObservedWindow): Hit {
    const { flagged, evidence } = window;
    const n = this.#o.nFeatures;
    const within: number[] = [];
    for (let j = 0; j < flagged.length; j++) {
      const f = flagged[j];
      if (f >= 0 && f < n) within.push(f);
    }
    let sensors: Uint32Array;
    const dense = within.length >= this.#words;
    if (dense) {
      sensors = new Uint32Array(this.#words);
      for (const f of within) sensors[f >>> 5] |= 1 << (f & 31);
    } else {
      sensors = Uint32Array.from(new Set(within)).sort();
    }
    const peak = new Map<number, SensorEvidence>();
    let maxSeverity = 0;
    for (const e of evidence) {
      const had = peak.get(e.feature_idx);
      if (!had || bySeverity(e, had) < 0) peak.set(e.feature_idx, e);
      if (e.severity > maxSeverity) maxSeverity = e.severity;
    }
    const top = [...peak.values()].sort(bySeverity).slice(0, this.#o.maxFeatures);
    return { t: window.timestamp, sensors, dense, peak: top, maxSeverity };
  }

  #savedHit(t: number, bits: string | undefined, peak: SensorEvidence[], maxSeverity: number): Hit {
    const sensors = bits === undefined ? new Uint32Array(0) : fromBase64(bits, this.#words);
    const top = [...peak].sort(bySeverity).slice(0, this.#o.maxFeatures);
    return { t, sensors, dense: bits !== undefined, peak: top, maxSeverity };
  }

  #bitsOf(h: Hit): Uint32Array {
    if (h.dense) return h.sensors;
    const bits = new Uint32Array(this.#words);
    for (const f of h.sensors) bits[f >>> 5] |= 1 << (f & 31);
    return bits;
  }

  /** The confirming set: the union of the hits in the ring, oldest first. */
  #pendingUnion(s: StreamState): Union {
    const u = this.#union();
    for (const h of s.hits) {
      if (h.dense) {
        for (let w = 0; w < h.sensors.length; w++) {
          const added = h.sensors[w] & ~u.bits[w];
          if (added !== 0) {
            u.bits[w] |= added;
            u.count += popcount(added);
          }
        }
      } else {
        this.#mergeFlags(u, h.sensors);
      }
      this.#mergeEvidence(u, h.peak);
    }
    return u;
  }

  #merge(u: Union, window: ObservedWindow): void {
    this.#mergeFlags(u, window.flagged);
    this.#mergeEvidence(u, window.evidence);
  }

  #mergeFlags(u: Union, flagged: ArrayLike<number>): void {
    const n = this.#o.nFeatures;
    for (let j = 0; j < flagged.length; j++) {
      const f = flagged[j];
      if (!(f >= 0 && f < n)) continue;
      const w = f >>> 5;
      const bit = 1 << (f & 31);
      if ((u.bits[w] & bit) === 0) {
        u.bits[w] |= bit;
        u.count++;
      }
    }
  }

  #mergeEvidence(u: Union, evidence: readonly SensorEvidence[]): void {
    for (const e of evidence) {
      const had = u.peak.get(e.feature_idx);
      if (!had || bySeverity(e, had) < 0) u.peak.set(e.feature_idx, e);
      if (e.severity > u.maxSeverity) u.maxSeverity = e.severity;
    }
    // Amortised pruning: at twice the cap, keep the `maxFeatures` most severe.
    if (u.peak.size > 2 * this.#o.maxFeatures) {
      u.peak = new Map(this.#top(u).map((e) => [e.feature_idx, e]));
    }
  }

  #top(u: Union): SensorEvidence[] {
    return [...u.peak.values()].sort(bySeverity).slice(0, this.#o.maxFeatures);
  }

  #emit(
    _s: StreamState,
    streamId: string,
    inc: OpenIncident,
    event: IncidentEvent["event"],
    timestamp: number,
  ): IncidentEvent {
    inc.emittedCount = inc.count;
    inc.emittedSeverity = inc.maxSeverity;
    inc.emittedAt = timestamp;
    return {
      event,
      incidentId: inc.id,
      streamId,
      startedAt: inc.startedAt,
      timestamp,
      sensorCount: inc.count,
      sensors: this.#top(inc),
      maxSeverity: inc.maxSeverity,
      ...(inc.kind ? { kind: inc.kind } : {}),
    };
  }

  #resolve(
    s: StreamState,
    streamId: string,
    inc: OpenIncident,
    timestamp: number,
    reason: "quiet" | "stale",
  ): IncidentEvent {
    const event = { ...this.#emit(s, streamId, inc, "resolved", timestamp), reason };
    s.incident = undefined;
    // Hits before the resolution belong to the resolved incident: with INCIDENT_QUIET_WINDOWS
    // under INCIDENT_CONFIRM_N they would confirm the next one at once, starting inside it (the
    // same id when its first hit is the old one's).
    s.recent.length = 0;
    return event;
  }

  /** A stream with no incident and no anomalous window in its ring holds nothing worth keeping. */
  #forgetIfIdle(streamId: string, s: StreamState): void {
    if (s.incident) return;
    if (s.recent.some((t) => t > 0)) return;
    this.#streams.delete(streamId);
  }
}

/**
 * The `resolved` event of a snapshot's open incident, without restoring it: at start-up, for a
 * stream saved under a model with other sensors. It lists none of them (their indices mean
 * nothing to the serving model) but counts them; undefined when no incident is open.
 */
export function resolvedFromSnapshot(
  streamId: string,
  snap: StreamSnapshot,
): IncidentEvent | undefined {
  const i = snap.incident;
  if (!i) return undefined;
  return {
    event: "resolved",
    incidentId: i.id,
    streamId,
    startedAt: i.startedAt,
    timestamp: snap.last,
    sensorCount: i.count,
    sensors: [],
    maxSeverity: i.maxSeverity,
    reason: "stale",
    ...(i.kind ? { kind: i.kind } : {}),
  };
}

function popcount(x: number): number {
  let v = x - ((x >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

/** The part of the engine's configuration that sets an incident tracker. */
export type IncidentSettings = Pick<
  EngineConfig,
  | "INCIDENT_CONFIRM_K"
  | "INCIDENT_CONFIRM_N"
  | "INCIDENT_QUIET_WINDOWS"
  | "INCIDENT_UPDATE_MIN_MS"
  | "INCIDENT_UPDATE_SEVERITY_RISE"
  | "MAX_ALERT_FEATURES"
>;

/**
 * The tracker the engine runs for a model, set by the configuration: the single-process engine,
 * the scale-out worker and `npm run eval` all build it here.
 */
export function incidentTrackerFor(
  settings: IncidentSettings,
  model: { n_features: number; version: string },
): IncidentTracker {
  return new IncidentTracker({
    nFeatures: model.n_features,
    modelVersion: model.version,
    confirmK: settings.INCIDENT_CONFIRM_K,
    confirmN: settings.INCIDENT_CONFIRM_N,
    quietWindows: settings.INCIDENT_QUIET_WINDOWS,
    updateMinMs: settings.INCIDENT_UPDATE_MIN_MS,
    updateSeverityRise: settings.INCIDENT_UPDATE_SEVERITY_RISE,
    maxFeatures: settings.MAX_ALERT_FEATURES,
  });
}
