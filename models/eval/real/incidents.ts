// Incident metrics: the engine's incident tracker fed one scored window at a time, events matched to episodes.
import { engineConfigSchema, parseConfig } from "../../../contracts/config.ts";
import type { ModelMetadata } from "../../../contracts/model.ts";
import { observedWindow, severityScale } from "../../../scoring/flagged_sensors.ts";
import {
  type IncidentEvent,
  type IncidentSettings,
  type IncidentTracker,
  incidentTrackerFor,
} from "../../../scoring/incident_tracker.ts";
import { episodes, median, round4 } from "./metrics.ts";

export type { IncidentSettings };

/**
 * The tracker's settings, parsed from `env` by the engine's own schema (the same variables,
 * defaults and errors as the engine), once, by the CLI.
 */
export function incidentSettings(env: Record<string, string | undefined>): IncidentSettings {
  const c = parseConfig(engineConfigSchema, env);
  return {
    INCIDENT_CONFIRM_K: c.INCIDENT_CONFIRM_K,
    INCIDENT_CONFIRM_N: c.INCIDENT_CONFIRM_N,
    INCIDENT_QUIET_WINDOWS: c.INCIDENT_QUIET_WINDOWS,
    INCIDENT_UPDATE_MIN_MS: c.INCIDENT_UPDATE_MIN_MS,
    INCIDENT_UPDATE_SEVERITY_RISE: c.INCIDENT_UPDATE_SEVERITY_RISE,
    MAX_ALERT_FEATURES: c.MAX_ALERT_FEATURES,
  };
}

/** Stream time of row 0 (the tracker treats a timestamp of 0 as "no window"). */
const EPOCH_MS = Date.UTC(2020, 0, 1);

/** One incident as the events told it, in rows of its run. */
export interface IncidentSpan {
  id: string;
  /** Row of the window that opened it. */
  openedRow: number;
  /** Row of its first anomalous window (k-of-n confirmation can open it later). */
  startedRow: number;
  resolvedRow: number | undefined;
  events: number;
}

/**
 * Feeds scored windows of one model to the engine's `IncidentTracker`, one `observe` per
 * window, and records the incidents per run (each run its own stream). Rows map to stream time
 * as `EPOCH_MS + row * periodMs`.
 */
export class IncidentRecorder {
  readonly #tracker: IncidentTracker;
  readonly #meta: ModelMetadata;
  readonly #scale: number;
  readonly #periodMs: number;
  readonly #maxFeatures: number;
  readonly #open = new Map<string, IncidentSpan>();
  /** Incidents per run (shared between the recorders of one suite: one model per task). */
  readonly spans: Map<string, IncidentSpan[]>;

  constructor(
    meta: ModelMetadata,
    periodMs: number,
    settings: IncidentSettings,
    spans = new Map<string, IncidentSpan[]>(),
  ) {
    this.spans = spans;
    this.#meta = meta;
    this.#scale = severityScale(meta);
    this.#periodMs = periodMs;
    this.#maxFeatures = settings.MAX_ALERT_FEATURES;
    this.#tracker = incidentTrackerFor(settings, meta);
  }

  /** One scored window of `run` ending at `row`; `input` is its `[window, features]` raw values. */
  observe(
    run: string,
    row: number,
    out: { scores: ArrayLike<number>; severity?: ArrayLike<number>; statistic?: ArrayLike<number> },
    input: ArrayLike<number>,
  ): void {
    const w = observedWindow(run, EPOCH_MS + row * this.#periodMs, out, input, {
      nFeatures: this.#meta.n_features,
      windowSize: this.#meta.window_size,
      threshold: this.#meta.default_threshold,
      scale: this.#scale,
      maxFeatures: this.#maxFeatures,
    });
    this.#record(run, this.#tracker.observe(w));
  }

  /** Ends `run`'s stream: an incident still open is closed as the engine closes a stale one. */
  finish(run: string): void {
    this.#record(run, this.#tracker.expire(run));
  }

  #record(run: string, events: IncidentEvent[]): void {
    for (const e of events) {
      const row = Math.round((e.timestamp - EPOCH_MS) / this.#periodMs);
      if (e.event === "opened") {
        const span: IncidentSpan = {
          id: e.incidentId,
          openedRow: row,
          startedRow: Math.round((e.startedAt - EPOCH_MS) / this.#periodMs),
          resolvedRow: undefined,
          events: 1,
        };
        this.#open.set(e.incidentId, span);
        const list = this.spans.get(run) ?? [];
        list.push(span);
        this.spans.set(run, list);
        continue;
      }
      const span = this.#open.get(e.incidentId);
      if (!span) continue;
      span.events++;
      if (e.event === "resolved") {
        span.resolvedRow = row;
        this.#open.delete(e.incidentId);
      }
    }
  }
}

export interface IncidentMetrics {
  episodes: number;
  /** Episodes with an incident whose opening window contains one of the episode's rows. */
  episodes_found: number;
  /** Episodes during which some incident was open (opened by the episode or before it). */
  episodes_covered: number;
  /** Incidents opened by an episode (opening window contains its rows) per episode. */
  incidents_per_episode: number;
  /** Incidents whose opening window contains no anomalous row. */
  false_incidents: number;
  /** Test frames whose window holds no anomalous row. */
  /** Test frames whose window holds no anomalous row. */
  normal_frames: number;
  false_incidents_per_10k_normal: number;
  /** Normal frames that alarm at the default point, per 10,000 normal frames (for comparison). */
  false_alarm_frames_per_10k_normal: number;
  /** Rows from an episode's start to the `opened` of its first incident. */
  median_delay_to_opened: number | undefined;
  /** Alerts (opened + updated + resolved) per incident. */
  alerts_per_incident: number;
  incidents: number;
  /** Episodes with a frame alarm inside (the frame-level count) ... */
  frame_episodes_detected: number;
  /** ... of which no incident was opened by the episode (lost by grouping) ... */
  episodes_lost: number;
  /** ... of which no incident was even open during the episode (an open one absorbs it). */
  episodes_lost_uncovered: number;
  /** Issue 13's target: false incidents <= 1/4 of false-alarm frames and at most one episode lost. */
  target_met: boolean;
}

/**
 * Matches incidents to the labelled episodes of each run. `runs` gives per run its full label,
 * the first test row (metrics count rows from there), the window size, and the default-point
 * alarms of the test rows (for the frame-level comparison).
 */
export function incidentMetrics(
  spansByRun: Map<string, IncidentSpan[]>,
  runs: { name: string; label: Uint8Array; testStart: number; alarm: Uint8Array }[],
  windowSize: number | ((run: string) => number),
): IncidentMetrics {
  let nEpisodes = 0;
  let found = 0;
  let covered = 0;
  let byEpisodes = 0;
  let falseIncidents = 0;
  let normal = 0;
  let falseFrames = 0;
  let incidents = 0;
  let events = 0;
  let frameFound = 0;
  let lost = 0;
  let lostUncovered = 0;
  const delays: number[] = [];
  for (const run of runs) {
    const spans = spansByRun.get(run.name) ?? [];
    const test = run.label.subarray(run.testStart);
    // A model whose window was chosen per training history has one per run.
    const W = typeof windowSize === "number" ? windowSize : windowSize(run.name);
    const windowAnomalous = (row: number) => {
      for (let r = Math.max(0, row - W + 1); r <= row; r++) if (run.label[r]) return true;
      return false;
    };
    // A normal frame: its whole window is normal (a window that still holds an anomalous row is
    // not a false alarm for a window-based detector, nor is an incident it opens).
    for (let i = 0; i < test.length; i++) {
      if (!windowAnomalous(run.testStart + i)) {
        normal++;
        if (run.alarm[i]) falseFrames++;
      }
    }
    const opensAnomalous = (s: IncidentSpan) => windowAnomalous(s.openedRow);
    for (const s of spans) {
      incidents++;
      events += s.events;
      if (!opensAnomalous(s)) falseIncidents++;
    }
    for (const [a, b] of episodes(test)) {
      const start = run.testStart + a;
      const end = run.testStart + b;
      nEpisodes++;
      // The opening window [opened - W + 1, opened] overlaps the episode [start, end).
      const mine = spans.filter((s) => s.openedRow >= start && s.openedRow - W + 1 < end);
      byEpisodes += mine.length;
      const frameHit = run.alarm.subarray(a, b).some((x) => x === 1);
      if (mine.length > 0) {
        found++;
        delays.push(Math.min(...mine.map((s) => s.openedRow)) - start);
      }
      if (frameHit) frameFound++;
      if (frameHit && mine.length === 0) lost++;
      const isCovered = spans.some(
        (s) => s.openedRow < end && (s.resolvedRow === undefined || s.resolvedRow >= start),
      );
      if (isCovered) covered++;
      if (frameHit && !isCovered) lostUncovered++;
    }
  }
  return {
    episodes: nEpisodes,
    episodes_found: found,
    episodes_covered: covered,
    incidents_per_episode: nEpisodes ? round4(byEpisodes / nEpisodes) : 0,
    false_incidents: falseIncidents,
    normal_frames: normal,
    false_incidents_per_10k_normal: normal ? round4((falseIncidents / normal) * 1e4) : 0,
    false_alarm_frames_per_10k_normal: normal ? round4((falseFrames / normal) * 1e4) : 0,
    median_delay_to_opened: median(delays),
    alerts_per_incident: incidents ? round4(events / incidents) : 0,
    incidents,
    frame_episodes_detected: frameFound,
    episodes_lost: lost,
    episodes_lost_uncovered: lostUncovered,
    target_met: falseIncidents <= falseFrames / 4 && lost <= 1,
  };
}

const cell = (x: number | undefined) => (x === undefined ? "–" : String(x));

/** Markdown rows of incident metrics, one per labelled row. */
export function incidentTable(rows: { name: string; m: IncidentMetrics }[]): string[] {
  const out = [
    "| | incidents | per episode | episodes found | episodes covered | median delay to opened | false incidents | false incidents / 10k normal | false-alarm frames / 10k normal | alerts per incident | episodes lost vs frames (not opened / not even covered) | target (≤ 1/4, ≤ 1 lost) |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const { name, m } of rows) {
    out.push(
      `| ${name} | ${m.incidents} | ${m.incidents_per_episode} | ${m.episodes_found}/${m.episodes} | ${m.episodes_covered}/${m.episodes} | ${cell(m.median_delay_to_opened)} | ${m.false_incidents} | ${m.false_incidents_per_10k_normal} | ${m.false_alarm_frames_per_10k_normal} | ${m.alerts_per_incident} | ${m.episodes_lost} / ${m.episodes_lost_uncovered} of ${m.frame_episodes_detected} | ${m.target_met ? "met" : "missed"} |`,
    );
  }
  return out;
}
