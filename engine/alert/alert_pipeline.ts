// The alert path after scoring: flagged sensors → incident state → alert body → state store → outbox.
import { isSpanContextValid, type SpanContext } from "@opentelemetry/api";
import type { Alert, FaultKind } from "../../contracts/alert.ts";
import { sensorEvidence } from "../../scoring/flagged_sensors.ts";
import {
  type IncidentEvent,
  type IncidentTracker,
  resolvedFromSnapshot,
  type SensorEvidence,
  type StreamSnapshot,
} from "../../scoring/incident_tracker.ts";
import type { Logger } from "../../telemetry/logger.ts";
import type { ScoredBatch } from "../batch/window_scorer.ts";
import type { IncidentEvidence } from "../evidence/incident_evidence.ts";
import { featuresSha256 } from "../history/history_recorder.ts";
import {
  IncidentMembership,
  type WindowIncidents,
  windowIncidents,
} from "../history/window_incidents.ts";
import { GAP_STEPS } from "../window/machine_states.ts";
import { mergeSteps, type PersistStep, type StreamRecord } from "./_persist_step.ts";
import type { AlertDispatcher } from "./alert_dispatcher.ts";
import type { AlertRecord } from "./alert_sender.ts";
import { type AlertContext, buildFrameAlert, buildIncidentAlert } from "./build_alert.ts";
import type { AlertFit } from "./fit_alert.ts";
import type {
  ForgottenMark,
  IncidentStateChange,
  IncidentStateStore,
  SavedModel,
  StoredIncidentState,
} from "./incident_state_store.ts";
import { savedModelContext } from "./resolve_unserved.ts";

/** Streams whose cadence is kept (the least recently scored forgotten beyond it). */
const MAX_CADENCES = 65_536;

export interface AlertPipelineOptions {
  mode: "incident" | "frame";
  context: AlertContext;
  /** Window size of the model (values per evidence window). */
  windowSize: number;
  severityScale: number;
  dispatcher: AlertDispatcher;
  log: Logger;
  /** Epoch ms now (alert `timestamp`, stale detection). */
  now: () => number;
  /** `ALERT_MODE=incident` only. */
  tracker?: IncidentTracker;
  store?: IncidentStateStore;
  /**
   * A stream with an incident (or one confirming) and no window for this long, or for 10 of its
   * own steps when that is longer, gets it resolved (`INCIDENT_STALE_MS`; the machine-off gap rule).
   */
  staleMs?: number;
  /** Incident context (history before onset, related sensors, fault kind) for incident alerts. */
  evidence?: IncidentEvidence;
  /** Alerts held, at most, while they cannot be kept (state store or outbox failing): 10,000. */
  maxHeldAlerts?: number;
  /** Characters of the alerts held, at most, while they cannot be kept: 64 Mi. */
  maxHeldBytes?: number;
  /**
   * The driver may hand over windows again that it handed over before (a scale-out worker's
   * partition is re-read from its committed position, and the state saved is ahead of that):
   * a stream the tracker forgets is then saved as a marker of its newest window
   * (`StoredIncidentState.forgotten`), not deleted, and windows up to it change nothing, until
   * `committed()` passes the position (`reached()`) it was forgotten at.
   */
  replays?: boolean;
}

/** A summary of one anomalous window for the batch log line. */
export interface WindowAnomaly {
  stream_id: string;
  anomalous: number;
  top: { feature_idx: number; score: number; severity: number }[];
}

/** A marker's position while the window it names has not been read again (see `#forgetting`). */
const UNREAD = Number.MAX_SAFE_INTEGER;

/** How often state changes without events are saved (a crash may forget at most this much). */
const DIRTY_SAVE_MS = 1000;

/** Least time between two warnings that alerts were cut to `ALERT_MAX_BYTES` (counts in between). */
const FIT_LOG_MS = 60_000;

/** Why a restored stream's incident ends at a window after a restart (not a re-read). */
type RestartEnd = "behind" | "gap";

/** A restored stream until its first window newer than its saved state (see `#restartEnd`). */
interface Restored {
  /** The saved newest window. */
  last: number;
  /** The saved step (stream time between its last two windows; 0 when not known). */
  step: number;
  /** The oldest window the saved state holds: its open incident's start, or its first hit. */
  from: number;
  /** A re-read of it was logged. */
  reread?: boolean;
}

/**
 * The oldest window `snapshot` holds: its open incident's start, or the first flagged window in
 * its confirmation ring (a quiet one there, or one before, is no part of it).
 */
function spanStart(snapshot: StreamSnapshot): number {
  let from = snapshot.incident?.startedAt ?? snapshot.last;
  for (const t of snapshot.recent) if (t > 0 && t < from) from = t;
  return from;
}

/**
 * Alerts held in memory, at most, while the state store (or the outbox) fails. Only incident
 * events make alerts (a few per incident: opened, updated, resolved), so 10,000 are thousands of
 * incidents during one outage, far more than a plant makes while a disk is being freed; the
 * state held beside them is one entry per stream, however long it lasts. Their bodies are
 * bounded too (one can be ~0.7 MB with 1,000 sensors' evidence): 64 Mi characters, a quarter of
 * what the outbox itself holds in memory (`OUTBOX_MAX_BYTES`). A store that never comes back then
 * costs that much, not the process: past either bound the oldest alerts are dropped, counted
 * (`droppedAlerts`) and logged as errors.
 */
const MAX_HELD_ALERTS = 10_000;
const MAX_HELD_BYTES = 64 * 2 ** 20;

/** What a stream's saved state names as its model: which sensors its indices are. */
const savedModelOf = (context: AlertContext): SavedModel => ({
  name: context.modelName,
  version: context.modelVersion,
  features: featuresSha256(context.featureNames),
});

function traceparentOf(span: SpanContext | undefined): string | undefined {
  if (!span || !isSpanContextValid(span)) return undefined;
  return `00-${span.traceId}-${span.spanId}-${(span.traceFlags & 0xff).toString(16).padStart(2, "0")}`;
}

/**
 * Turns scored batches into alerts and hands them to the dispatcher, in batch order.
 *
 * `ALERT_MODE=frame`: one alert per anomalous window. `ALERT_MODE=incident`: the tracker's
 * events become alerts, and before any of them enters the outbox the streams' new state is
 * saved, with those alerts, durably (fsync) in the state store. Then a crash can leave the
 * state saved and its alerts not yet in the outbox, which the next start repairs by submitting
 * the alerts kept with the state (the backend stores an `alert_id` once); it can never leave an
 * alert in the outbox whose incident state was lost. State changes without events (a quiet
 * window counted, a sensor's peak) are saved once a second, without fsync: a crash may forget
 * them, the incident stays open and goes on.
 *
 * When a save or the outbox fails (disk full, I/O error, folder removed), the step's state and
 * alerts stay held in memory, ahead of later batches, and are tried again at the next batch with
 * events, every second, at `flush()` and at `stop()`; they reach the outbox in order once saved.
 * One warning per outage, one line when it works again; at most `maxHeldAlerts` are held.
 */
export class AlertPipeline {
  #o: AlertPipelineOptions;
  /** Persistence steps run one after another, so a batch's state never overtakes its alerts. */
  #chain: Promise<void> = Promise.resolve();
  /**
   * What is not kept yet: a step that failed (its state, its alerts) with the steps handed over
   * since merged behind it, retried at the next batch, the next dirty-state tick, `flush()` and
   * `stop()`; or just the next step, while none failed.
   */
  #pending: PersistStep | undefined;
  /** A run of `#pending` is queued on the chain. */
  #scheduled = false;
  /** Since when (epoch ms), and why, keeping has failed; undefined while it works. */
  #outage: { since: number; error: unknown } | undefined;
  /** Alerts dropped because more than `maxHeldAlerts` could not be kept (since start). */
  #dropped = 0;
  /**
   * Per tracked stream: when (epoch ms) the tracker last took a window of it, and that window's
   * timestamp (a window it ignores, not newer than that, says nothing of the stream being alive).
   */
  readonly #seen = new Map<string, { at: number; last: number }>();
  /**
   * Restored streams whose first window newer than their saved state has not come: their saved
   * newest window, step and span, against which each window is judged (`#reread`, `#restartEnd`).
   */
  readonly #restored = new Map<string, Restored>();
  /**
   * Per stream (tracked or not, the least recently scored first, bounded): its last window's
   * timestamp and the step before it (stream time), so a stream sampled more slowly than
   * `staleMs` is not taken as silent between two of its frames.
   */
  readonly #cadence = new Map<string, { at: number; step: number }>();
  /** Per tracked stream: the alerts of its last events, kept with its state. */
  readonly #lastAlerts = new Map<string, AlertRecord[]>();
  #timer: ReturnType<typeof setInterval> | undefined;
  /** Streams whose state changed without an event: saved together, once a second. */
  readonly #dirty = new Set<string>();
  #flushTimer: ReturnType<typeof setInterval> | undefined;
  /** Saved with every stream's state (incident mode). */
  #model: SavedModel | undefined;
  /** Which incident each window is part of, from the tracker's own events and restored state. */
  readonly #membership = new IncidentMembership();
  /** `replays`: streams whose state is a marker of what they were forgotten at. */
  readonly #markers = new Map<string, ForgottenMark>();
  /** `replays`: streams forgotten and not saved since, with their marker. */
  readonly #forgot = new Map<string, ForgottenMark>();
  /** `replays`: the driver's position; every window handed over so far is at or before it. */
  #position = 0;
  /** Alerts cut to `ALERT_MAX_BYTES` since start, and since the last warning about it. */
  #cut = {
    total: 0,
    alerts: 0,
    contextDropped: 0,
    typicalDropped: 0,
    unlisted: 0,
    loggedAt: -Infinity,
  };

  constructor(options: AlertPipelineOptions) {
    if (options.mode === "incident" && (!options.tracker || !options.store)) {
      throw new RangeError("ALERT_MODE=incident needs an incident tracker and a state store");
    }
    const { maxHeldAlerts = MAX_HELD_ALERTS, maxHeldBytes = MAX_HELD_BYTES } = options;
    for (const [name, value] of Object.entries({ maxHeldAlerts, maxHeldBytes })) {
      if (!Number.isInteger(value) || value < 1) {
        throw new RangeError(`'${name}' must be a positive integer, got ${value}`);
      }
    }
    this.#o = options;
    if (options.tracker) this.#model = savedModelOf(options.context);
  }

  /** Open incidents right now (0 in frame mode). */
  get openIncidents(): number {
    return this.#o.tracker?.openIncidents ?? 0;
  }

  /** Alerts waiting to be kept (their state saved, then in the outbox). */
  get heldAlerts(): number {
    return this.#pending?.records.length ?? 0;
  }

  /**
   * Why alerts are held (the last error keeping them), and since when (epoch ms); undefined
   * while keeping works.
   */
  get heldBecause(): { reason: string; since: number } | undefined {
    const outage = this.#outage;
    if (!outage) return undefined;
    const error = outage.error;
    return { reason: error instanceof Error ? error.message : String(error), since: outage.since };
  }

  /** Alerts dropped since start because more than `maxHeldAlerts` could not be kept. */
  get droppedAlerts(): number {
    return this.#dropped;
  }

  /** Alerts cut since start to fit `ALERT_MAX_BYTES` (sensors, typical ranges or context left out). */
  get cutAlerts(): number {
    return this.#cut.total;
  }

  /**
   * Restores the saved incident state and resubmits the alerts kept with it (they may not
   * have reached the outbox before a crash); starts the stale-stream timer. A stream saved under
   * a model with other sensors (the pointer moved while the engine was down) is not restored:
   * its open incident is resolved, as `useModel` does live, under the version it was saved with.
   * Each restored stream's windows are judged against its saved state until one is newer than
   * it: one not newer but inside the saved state's span (from its open incident's start) is a
   * re-read of a window scored before the restart (a producer replaying what it sent) and changes
   * nothing; one older than that span (a clock set back), or the first newer one after a silence,
   * resolves the restored incident first (`#restartEnd`). With `replays` every window up to the
   * saved one is a re-read, so only the silence counts.
   */
  async start(): Promise<void> {
    const { tracker, store, log, staleMs } = this.#o;
    // Every second: changed state saved, and held alerts tried again (frame mode holds them too).
    this.#flushTimer = setInterval(() => this.#saveDirty(), DIRTY_SAVE_MS);
    this.#flushTimer.unref?.();
    if (!tracker || !store) return;
    const states = await store.load();
    const now = this.#o.now();
    const records: AlertRecord[] = [];
    /** States of forgotten streams: deleted, or (`replays`) a marker without its alerts. */
    const cleared: IncidentStateChange[] = [];
    const foreign = new Map<string, StoredIncidentState>();
    for (const [streamId, state] of states) {
      if (state.snapshot && !this.#fits(state)) foreign.set(streamId, state);
      else if (state.snapshot) {
        tracker.restore(streamId, state.snapshot);
        const last = state.snapshot.last;
        this.#seen.set(streamId, { at: now, last });
        // The stream's cadence goes on: a slowly sampled stream is not silent between frames.
        const step = state.step ?? 0;
        this.#restored.set(streamId, { last, step, from: spanStart(state.snapshot) });
        if (!this.#o.replays) this.#cadence.set(streamId, { at: last, step });
        const open = state.snapshot.incident;
        if (open) this.#membership.restored(streamId, open.id);
      } else if (state.forgotten && this.#o.replays) {
        // Its windows up to the marker may be re-read: they change nothing (`committed` deletes it).
        this.#markers.set(streamId, state.forgotten);
        if (state.alerts?.length) cleared.push({ streamId, state: { forgotten: state.forgotten } });
      } else {
        cleared.push({ streamId, state: undefined });
      }
      if (state.alerts?.length) {
        records.push(...state.alerts);
        this.#lastAlerts.set(streamId, state.alerts);
      }
    }
    await this.#o.dispatcher.resubmit(records);
    await store.save(cleared, false);
    this.#resolveForeign(foreign);
    if (states.size) {
      log.info("incident state restored", {
        streams: states.size,
        open_incidents: tracker.openIncidents,
        alerts_resubmitted: records.length,
      });
    }
    if (staleMs) {
      this.#timer = setInterval(() => this.expireStale(), Math.min(10_000, staleMs / 4));
      this.#timer.unref?.();
    }
  }

  /** The stream's saved sensors are the serving model's (older states: its indices fit). */
  #fits(state: StoredIncidentState): boolean {
    const saved = state.model;
    const model = this.#model!;
    if (!saved) return this.#o.tracker!.fits(state.snapshot!);
    return saved.name === model.name && saved.features === model.features;
  }

  /**
   * Resolves the open incidents of streams saved under a model with other sensors, each alert
   * named by the model and version the state was saved with, and deletes their states once
   * those alerts are kept (a confirming stream's at once), as `#forget` does.
   */
  #resolveForeign(foreign: Map<string, StoredIncidentState>): void {
    if (foreign.size === 0) return;
    const made: StreamRecord[] = [];
    const { modelName: name, modelVersion: version } = this.#o.context;
    for (const [streamId, { snapshot, model: saved }] of foreign) {
      const event = resolvedFromSnapshot(streamId, snapshot!);
      if (!event) continue;
      const context = savedModelContext(this.#o.context, saved, { name, version });
      made.push(...this.#records([event], new Map(), context));
    }
    if (made.length) {
      this.#o.log.info("incidents resolved: saved under a model with other features", {
        incidents: made.length,
      });
    }
    this.#persist(made, new Set(foreign.keys()), true);
  }

  /**
   * Takes another model between two batches (a hot swap): its alerts name it, and the incident
   * ids it opens derive from it. An incident opened under the previous model goes on and resolves
   * under this one. With a `tracker` (a model with other features), every open incident is
   * resolved first: its sensors mean nothing to the new model.
   */
  useModel(
    next: Pick<AlertPipelineOptions, "context" | "windowSize" | "severityScale" | "tracker"> &
      Pick<Partial<AlertPipelineOptions>, "evidence">,
  ): void {
    const previous = this.#o.tracker;
    if (next.tracker && previous && next.tracker !== previous) {
      const events: IncidentEvent[] = [];
      const forgotten = new Set<string>();
      for (const streamId of this.#seen.keys()) {
        if (previous.has(streamId)) forgotten.add(streamId);
        this.#forgetting(streamId, previous);
        events.push(...previous.expire(streamId));
      }
      if (events.length) {
        this.#o.log.info("incidents resolved: the new model has other features", {
          incidents: events.length,
        });
      }
      this.#forget(events, forgotten);
    }
    const tracker = next.tracker ?? previous;
    tracker?.useModelVersion(next.context.modelVersion);
    this.#o = { ...this.#o, ...next, tracker };
    if (tracker) this.#model = savedModelOf(next.context);
  }

  /** Resolves the stream's open incident: its machine stopped (a stop is not an anomaly). */
  machineStopped(streamId: string): void {
    const tracker = this.#o.tracker;
    if (!tracker) return;
    const had = tracker.has(streamId);
    this.#forgetting(streamId);
    this.#restored.delete(streamId);
    const events = tracker.expire(streamId);
    if (events.length) {
      this.#o.log.info("incident resolved: the machine stopped", { stream_id: streamId });
    }
    this.#forget(events, new Set(had ? [streamId] : []));
  }

  /**
   * `replays`: the driver's position (a partition sequence) of the windows it hands over next,
   * and of everything before; a stream forgotten from now on is marked with it.
   */
  reached(position: number): void {
    if (position > this.#position) this.#position = position;
  }

  /**
   * `replays`: the driver committed `position`, so no window at or before it is handed over
   * again: the markers of streams forgotten by then are deleted (after their alerts, if any
   * are still on their way to the outbox).
   */
  committed(position: number): void {
    const changes = new Map<string, StoredIncidentState | undefined>();
    for (const [streamId, mark] of this.#markers) {
      if (mark.at > position) continue;
      this.#markers.delete(streamId);
      changes.set(streamId, undefined);
    }
    if (changes.size) this.#hand({ changes, records: [], tombstones: new Set() });
  }

  /**
   * `replays`: the tracker is about to forget `streamId` (or just did, after the window at
   * `last`); notes its marker: its newest window, and the position that window is at or before.
   * A stream restored at a takeover whose newest window has not been read again here is at a
   * position not known yet: marked {@link UNREAD} until that window comes.
   */
  #forgetting(streamId: string, tracker = this.#o.tracker, last?: number): void {
    if (!this.#o.replays) return;
    const newest = last ?? tracker?.snapshot(streamId)?.last;
    if (newest === undefined) return;
    const handed = last !== undefined || (this.#cadence.get(streamId)?.at ?? -1) >= newest;
    this.#forgot.set(streamId, { last: newest, at: handed ? this.#position : UNREAD });
  }

  /** Records a stream's window time and the step since its previous one. */
  #step(streamId: string, timestamp: number): void {
    const last = this.#cadence.get(streamId);
    this.#cadence.delete(streamId);
    const step = last && timestamp > last.at ? timestamp - last.at : (last?.step ?? 0);
    this.#cadence.set(streamId, { at: timestamp, step });
    if (this.#cadence.size > MAX_CADENCES) {
      this.#cadence.delete(this.#cadence.keys().next().value as string);
    }
  }

  /**
   * Whether a window of a restored stream, not newer than its saved state, is a re-read of one
   * scored before the restart or the takeover: the tracker ignores it, and it ends nothing. The
   * engine's frame order is not saved, so a producer replaying frames it sent before the restart
   * has them taken again; a window inside the saved state's span (its open incident's start, or
   * first confirming hit, to its newest window) is one of those, or of a clock set back by less
   * than that span, which is told apart only once the stream passes its saved newest window. A
   * quiet window older than that span, by at most `staleMs` (or 10 of the stream's steps), is
   * taken as a re-read too (a producer replaying its last minute reaches back before an incident
   * younger than that); a flagged one, or one further back, is a clock set back (`#restartEnd`).
   * A clock set back by less than that has its incident resolved by the stale timer instead (the
   * ignored windows do not count as the stream alive). With `replays` the driver
   * re-reads from a position before the state saved, so every window up to it is a re-read.
   * `held`: the tracker still holds the stream.
   */
  #reread(restored: Restored, timestamp: number, held: boolean, flagged: boolean): boolean {
    if (timestamp > restored.last) return false;
    if (this.#o.replays === true) return true;
    if (!held) return false;
    // A replay reaches back minutes, not hours: a quiet window further back is a clock set back.
    const reach = Math.max(this.#o.staleMs ?? 0, GAP_STEPS * restored.step);
    return timestamp >= restored.from || (!flagged && timestamp >= restored.from - reach);
  }

  /**
   * Whether a restored stream's window after the restart, not a re-read (`#reread`), ends its
   * restored incident: it is older than the saved state's span (a producer's clock set back: the
   * tracker would ignore it and every window up to the saved newest one, holding the incident
   * meanwhile), or it comes after a silence the live path takes as a stop (the machine-off gap
   * rule: more than `staleMs` and more than 10 of the stream's saved steps; `staleMs` alone when
   * the step is not known, as `expireStale` has it).
   */
  #restartEnd(restored: Restored, timestamp: number): RestartEnd | undefined {
    if (timestamp <= restored.last) return "behind";
    const staleMs = this.#o.staleMs;
    if (!staleMs) return undefined;
    return timestamp - restored.last > Math.max(staleMs, GAP_STEPS * restored.step)
      ? "gap"
      : undefined;
  }

  /**
   * Hears what `ALERT_MAX_BYTES` cut from an alert: counted, and said at warn at most once a
   * minute (with what was cut since the line before), so a receiver's limit is never silent.
   */
  readonly #fitted = (fit: AlertFit, alert: Alert): void => {
    const cut = this.#cut;
    cut.total++;
    cut.alerts++;
    cut.contextDropped += fit.contextDropped;
    cut.typicalDropped += fit.typicalDropped;
    cut.unlisted += fit.unlisted;
    const now = this.#o.now();
    if (now - cut.loggedAt < FIT_LOG_MS) return;
    this.#o.log.warn("alerts cut to fit ALERT_MAX_BYTES", {
      alert_id: alert.alert_id,
      context_dropped: fit.contextDropped,
      typical_dropped: fit.typicalDropped,
      unlisted: fit.unlisted,
      max_bytes: this.#o.context.maxBytes,
      since_last_line: {
        alerts: cut.alerts,
        context_dropped: cut.contextDropped,
        typical_dropped: cut.typicalDropped,
        unlisted: cut.unlisted,
      },
      alerts_cut_total: cut.total,
    });
    cut.loggedAt = now;
    cut.alerts = cut.contextDropped = cut.typicalDropped = cut.unlisted = 0;
  };

  /**
   * Says at warn, at most once a minute (the store keeps when), that streams go without incident
   * history: without it their alerts just carry none, which nobody would notice (`/stats`
   * `evidence` counts it too).
   */
  #noteHistory(now: number): void {
    const store = this.#o.evidence?.history;
    const short = store?.shortfall(now);
    if (!short) return;
    this.#o.log.warn(
      short.capacity === 0
        ? "no incident history is kept: EVIDENCE_HISTORY_MAX_MB holds no stream's EVIDENCE_HISTORY_FRAMES"
        : "streams go without incident history: EVIDENCE_HISTORY_MAX_MB holds fewer streams than are live",
      {
        model: this.#o.context.modelName,
        frames: short.frames,
        capacity: short.capacity,
        streams: short.streams,
        ringless_frames_since_last_line: short.ringless_since,
        ringless_frames: short.ringless,
        evictions: short.evictions,
      },
    );
  }

  /**
   * Resolves the incidents (and forgets the confirmations) of streams silent for `staleMs`, or
   * for 10 of their own steps when that is longer: a stream sampled every 10 minutes is not
   * silent between two frames, as the machine-off gap rule has it.
   */
  expireStale(): void {
    const { tracker, staleMs } = this.#o;
    if (!tracker || !staleMs) return;
    const now = this.#o.now();
    const events: IncidentEvent[] = [];
    const forgotten = new Set<string>();
    for (const [streamId, seen] of this.#seen) {
      const step = this.#cadence.get(streamId)?.step ?? 0;
      if (now - seen.at < Math.max(staleMs, GAP_STEPS * step)) continue;
      if (tracker.has(streamId)) forgotten.add(streamId);
      this.#forgetting(streamId);
      events.push(...tracker.expire(streamId));
      this.#seen.delete(streamId);
      this.#restored.delete(streamId);
    }
    if (events.length) {
      this.#o.log.info("incidents of silent streams resolved", { incidents: events.length });
    }
    this.#forget(events, forgotten);
  }

  /**
   * Saves what the tracker forgot: the events' alerts, and the state of every stream it had
   * (one still confirming forgets without an event; its saved state, left on disk, came back at
   * the next start and confirmed an incident with a window from before the stop).
   */
  #forget(events: IncidentEvent[], streams: Set<string>): void {
    this.#membership.follow(events);
    for (const e of events) streams.add(e.streamId);
    if (streams.size === 0) return;
    this.#persist(this.#records(events, new Map()), streams, true);
  }

  /**
   * Takes a scored batch (synchronously: its buffers are reused after this returns) and
   * queues its alerts. Returns a summary of its anomalous windows for the log and, in incident
   * mode, which incident each window is part of (the training history tags its frames with it).
   */
  scored(
    batch: ScoredBatch,
    completedAt = batch.completedAt,
  ): {
    alerts: number;
    anomalies: WindowAnomaly[];
    /** Per row, the incident its window is part of; undefined in frame mode (no incidents). */
    incidents: WindowIncidents | undefined;
  } {
    const { mode, context, tracker } = this.#o;
    const now = this.#o.now();
    const anomalies: WindowAnomaly[] = [];
    const frameRecords: StreamRecord[] = [];
    const events: IncidentEvent[] = [];
    const latencies = new Map<IncidentEvent, { latencyMs: number; span?: SpanContext }>();
    const touched = new Set<string>();
    const incidents = mode === "incident" ? windowIncidents(batch.size) : undefined;
    this.#noteHistory(now);
    for (let r = 0; r < batch.size; r++) {
      const streamId = batch.streamIds[r];
      const timestamp = batch.timestamps[r];
      const latencyMs = completedAt - batch.receivedAt[r];
      const flagged = batch.flagged.subarray(batch.flaggedFrom[r], batch.flaggedFrom[r + 1]);
      const evidence = flagged.length ? this.#evidence(batch, r, flagged) : [];
      if (flagged.length) {
        anomalies.push({
          stream_id: streamId,
          anomalous: flagged.length,
          top: evidence.slice(0, 5).map((e) => ({
            feature_idx: e.feature_idx,
            score: e.score,
            severity: e.severity,
          })),
        });
      }
      if (mode === "frame") {
        if (!flagged.length) continue;
        const alert = buildFrameAlert(
          context,
          {
            streamId,
            frameTimestamp: timestamp,
            count: flagged.length,
            sensors: evidence,
            latencyMs,
            now,
          },
          this.#fitted,
        );
        const record = {
          id: alert.alert_id,
          body: JSON.stringify(alert),
          traceparent: traceparentOf(batch.spans[r]),
        };
        frameRecords.push({ streamId, record });
        continue;
      }
      const t = tracker!;
      this.#step(streamId, timestamp);
      let before = t.has(streamId);
      const mark = this.#markers.get(streamId);
      if (mark && !before && timestamp <= mark.last) {
        // Re-read after a takeover: the stream was forgotten after this window (as the tracker
        // ignores a window not newer than the last it holds).
        if (timestamp === mark.last && mark.at > this.#position) mark.at = this.#position;
        this.#membership.window(incidents!, r, streamId, [], false);
        continue;
      }
      const restored = this.#restored.get(streamId);
      if (restored && this.#reread(restored, timestamp, before, flagged.length > 0)) {
        // Scored before the restart (or the takeover): the tracker ignores it (nothing counted
        // twice), the restored incident goes on, and the window is tagged with it.
        if (!this.#o.replays && !restored.reread) {
          restored.reread = true;
          this.#o.log.info(
            "restored stream re-read: its windows not newer than its last change nothing",
            {
              stream_id: streamId,
              last: new Date(restored.last).toISOString(),
              window: new Date(timestamp).toISOString(),
            },
          );
        }
      } else if (restored) {
        this.#restored.delete(streamId);
        const why = before ? this.#restartEnd(restored, timestamp) : undefined;
        if (why) {
          // The restored incident ends where its stream last was; this window starts afresh.
          const ended = t.expire(streamId);
          this.#o.log.info(
            why === "behind"
              ? "restored incident resolved: the stream's window after the restart is older than its saved state"
              : "restored incident resolved: the stream was silent past the gap rule across the restart",
            {
              stream_id: streamId,
              last: new Date(restored.last).toISOString(),
              window: new Date(timestamp).toISOString(),
            },
          );
          this.#membership.follow(ended);
          for (const e of ended) {
            events.push(e);
            latencies.set(e, { latencyMs, span: batch.spans[r] });
          }
          touched.add(streamId);
          this.#seen.delete(streamId);
          before = false;
        }
      }
      const seen = this.#seen.get(streamId);
      // The tracker ignores a window not newer than the last it took (a re-read after a takeover).
      const taken = !before || seen === undefined || timestamp > seen.last;
      const out = t.observe({ streamId, timestamp, flagged, evidence });
      const holding = t.has(streamId);
      if (before && !holding) this.#forgetting(streamId, t, timestamp);
      this.#membership.window(incidents!, r, streamId, out, holding);
      if (before || holding || out.length) touched.add(streamId);
      if (!holding) this.#seen.delete(streamId);
      else if (taken) this.#seen.set(streamId, { at: now, last: timestamp });
      for (const e of out) {
        events.push(e);
        latencies.set(e, { latencyMs, span: batch.spans[r] });
      }
    }
    if (mode === "frame") {
      this.#submit(frameRecords);
      return { alerts: frameRecords.length, anomalies, incidents };
    }
    const records = this.#records(events, latencies);
    if (touched.size) this.#persist(records, touched);
    // What an operator reads in the log: each incident's events (its windows are debug lines).
    for (const e of events) {
      this.#o.log.info(`incident ${e.event}`, {
        incident_id: e.incidentId,
        stream_id: e.streamId,
        started_at: new Date(e.startedAt).toISOString(),
        sensors: e.sensorCount,
        max_severity: Math.round(e.maxSeverity * 100) / 100,
        ...(e.reason ? { reason: e.reason } : {}),
      });
    }
    return { alerts: records.length, anomalies, incidents };
  }

  /**
   * Saves every state change so far (dirty ones too, without fsync), retries what failed before,
   * and waits until every batch handed over so far has its state saved and its alerts in the
   * outbox. Rejects while any of them cannot be kept (they stay held, retried later): the
   * scale-out worker calls it before it commits a partition's offset (those windows are never
   * scored again), and must not move past alerts never stored.
   */
  async flush(): Promise<void> {
    this.#saveDirty();
    await this.#chain;
    if (this.#outage) throw this.#outage.error;
  }

  /** Stops the timers, saves what changed (one more try for what failed) and waits for it. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    if (this.#flushTimer) clearInterval(this.#flushTimer);
    this.#timer = undefined;
    this.#flushTimer = undefined;
    await this.flush().catch((error) => {
      this.#o.log.error(
        "stopping with alerts that could not be kept: they never reached the outbox",
        error,
        {
          alerts: this.heldAlerts,
          streams: this.#pending?.changes.size ?? 0,
        },
      );
    });
  }

  /** Saves the dirty streams; retries a step that failed even when none is dirty. */
  #saveDirty(): void {
    if (this.#dirty.size) this.#persist([], new Set(this.#dirty), true);
    else this.#schedule();
  }

  #evidence(batch: ScoredBatch, r: number, flagged: Int32Array): SensorEvidence[] {
    const W = this.#o.windowSize;
    const F = this.#o.context.featureNames.length;
    const row = {
      scores: batch.scores.subarray(r * F, (r + 1) * F),
      severity: batch.severity?.subarray(r * F, (r + 1) * F),
      statistic: batch.statistic?.subarray(r * F, (r + 1) * F),
    };
    const listed = batch.evidenceFrom[r + 1] - batch.evidenceFrom[r];
    const out: SensorEvidence[] = [];
    for (let j = 0; j < listed; j++) {
      const at = (batch.evidenceFrom[r] + j) * W;
      const window = Array.from(batch.windows.subarray(at, at + W));
      const level = batch.levels[batch.evidenceFrom[r] + j];
      out.push(sensorEvidence(row, flagged[j], this.#o.severityScale, window, level));
    }
    return out;
  }

  #records(
    events: IncidentEvent[],
    latencies: Map<IncidentEvent, { latencyMs: number; span?: SpanContext }>,
    alertContext = this.#o.context,
  ): StreamRecord[] {
    const now = this.#o.now();
    /**
     * Kind per incident as judged by this call's earlier events: the tracker made all of a
     * batch's events before any was classified, so a later event of the same incident (its
     * `resolved`) carries the kind of before the batch, or none.
     */
    const judged = new Map<string, FaultKind>();
    return events.map((event) => {
      const at = latencies.get(event);
      const kind = judged.get(event.incidentId);
      const e = kind ? { ...event, kind } : event;
      // The kind is decided from the evidence of `opened`/`updated`; the tracker keeps it.
      const ev = this.#o.evidence;
      const context = ev?.nFeatures === alertContext.featureNames.length ? ev.build(e) : undefined;
      if (context?.kind) {
        judged.set(e.incidentId, context.kind);
        this.#o.tracker?.classify(e.streamId, context.kind, e.incidentId);
      }
      const alert = buildIncidentAlert(
        alertContext,
        e,
        { latencyMs: at?.latencyMs ?? 0, now },
        context,
        this.#fitted,
      );
      const record = {
        id: alert.alert_id,
        body: JSON.stringify(alert),
        traceparent: traceparentOf(at?.span),
      };
      return { streamId: e.streamId, record };
    });
  }

  /**
   * Saves the state of the streams with events (durably: it carries their alerts), then submits
   * the alerts. Other touched streams are only marked dirty (`all`: save them too, not durably):
   * a window that changes an open incident without an event costs no file write.
   */
  #persist(made: StreamRecord[], touched: Set<string>, all = false): void {
    const { tracker } = this.#o;
    const byStream = new Map<string, AlertRecord[]>();
    for (const { streamId, record } of made) {
      const list = byStream.get(streamId) ?? [];
      list.push(record);
      byStream.set(streamId, list);
    }
    const changes = new Map<string, StoredIncidentState | undefined>();
    const tombstones = new Set<string>();
    for (const streamId of touched) {
      const fresh = byStream.get(streamId);
      if (!fresh && !all) {
        this.#dirty.add(streamId);
        continue;
      }
      this.#dirty.delete(streamId);
      if (fresh) this.#lastAlerts.set(streamId, fresh);
      const snapshot = tracker!.snapshot(streamId);
      const alerts = this.#lastAlerts.get(streamId);
      const forgotten = snapshot ? undefined : this.#forgot.get(streamId);
      this.#forgot.delete(streamId);
      if (forgotten) this.#markers.set(streamId, forgotten);
      else this.#markers.delete(streamId);
      let state: StoredIncidentState | undefined;
      const step = this.#cadence.get(streamId)?.step;
      if (snapshot) {
        state = {
          snapshot,
          ...(alerts ? { alerts } : {}),
          model: this.#model,
          ...(step ? { step } : {}),
        };
      } else if (fresh) {
        // Resolved and forgotten: keep the alerts until they are in the outbox, then delete
        // (`replays`: leave the marker).
        state = { alerts: fresh, ...(forgotten ? { forgotten } : {}) };
        tombstones.add(streamId);
        this.#lastAlerts.delete(streamId);
      } else {
        this.#lastAlerts.delete(streamId);
        if (forgotten) state = { forgotten };
      }
      changes.set(streamId, state);
    }
    if (changes.size) this.#hand({ changes, records: made, tombstones });
    else this.#schedule();
  }

  #submit(records: StreamRecord[]): void {
    if (records.length) this.#hand({ changes: new Map(), records, tombstones: new Set() });
  }

  /** Queues `step` behind what is pending (a failed step first), within the bound. */
  #hand(step: PersistStep): void {
    this.#pending = this.#pending ? mergeSteps(this.#pending, step) : step;
    this.#bound();
    this.#schedule();
  }

  #schedule(): void {
    if (!this.#pending || this.#scheduled) return;
    this.#scheduled = true;
    this.#chain = this.#chain.then(() => this.#run());
  }

  /**
   * Saves, submits and deletes what is pending, in that order. On a failure what is left of it
   * stays pending, ahead of what comes next, for the next try: one warning per outage, and one
   * line when it works again. A stream whose state cannot be saved (its own file or key failing)
   * holds only its own alerts: the other streams' states are saved and their alerts submitted.
   */
  async #run(): Promise<void> {
    this.#scheduled = false;
    const step = this.#pending;
    if (!step) return;
    this.#pending = undefined;
    const { dispatcher, log } = this.#o;
    let failure: { error: unknown } | undefined;
    try {
      const failed = new Set<string>();
      if (step.changes.size) {
        const changes = [...step.changes].map(([streamId, state]) => ({ streamId, state }));
        const error = await this.#saveEach(changes, step.records.length > 0, failed);
        for (const { streamId } of changes) {
          if (!failed.has(streamId)) step.changes.delete(streamId);
        }
        if (failed.size) failure = { error };
      }
      if (step.records.length) {
        const ready = failed.size
          ? step.records.filter((r) => !failed.has(r.streamId))
          : step.records;
        if (ready.length) await dispatcher.submit(ready.map((r) => r.record));
        step.records = failed.size ? step.records.filter((r) => failed.has(r.streamId)) : [];
      }
      if (step.tombstones.size) {
        const gone: IncidentStateChange[] = [];
        for (const streamId of step.tombstones) {
          if (failed.has(streamId)) continue;
          // A marker not committed past yet stays (`replays`); otherwise the stream's state goes.
          const forgotten = this.#markers.get(streamId);
          gone.push({ streamId, state: forgotten ? { forgotten } : undefined });
        }
        const error = await this.#saveEach(gone, false, failed);
        for (const { streamId } of gone) {
          if (!failed.has(streamId)) step.tombstones.delete(streamId);
        }
        if (failed.size) failure ??= { error };
      }
    } catch (error) {
      failure = { error };
    }
    if (failure) {
      this.#pending = this.#pending ? mergeSteps(step, this.#pending) : step;
      this.#bound();
      const { error } = failure;
      if (!this.#outage) {
        log.warn(
          this.#o.mode === "frame"
            ? "could not keep alerts in the outbox; held in memory and retried"
            : "could not keep incident state and alerts; held in memory and retried",
          error as Error,
          { alerts_held: this.heldAlerts },
        );
      }
      this.#outage ??= { since: this.#o.now(), error };
      this.#outage.error = error;
      return;
    }
    if (this.#outage) {
      log.info("incident state and alerts kept again", {
        failing_ms: this.#o.now() - this.#outage.since,
        alerts_dropped: this.#dropped,
      });
      this.#outage = undefined;
    }
  }

  /**
   * Saves `changes` together, or, when that fails, each stream's alone, so that one stream whose
   * state cannot be kept holds only itself. Adds the streams not saved to `failed` and returns the
   * last error (undefined when all were saved). A store down for every stream is then tried once
   * per stream at each retry (a second apart, or at the next batch with events).
   */
  async #saveEach(
    changes: IncidentStateChange[],
    durable: boolean,
    failed: Set<string>,
  ): Promise<unknown> {
    if (changes.length === 0) return undefined;
    const store = this.#o.store!;
    try {
      await store.save(changes, durable);
      return undefined;
    } catch (error) {
      if (changes.length === 1) {
        failed.add(changes[0].streamId);
        return error;
      }
    }
    let last: unknown;
    for (const change of changes) {
      try {
        await store.save([change], durable);
      } catch (error) {
        failed.add(change.streamId);
        last = error;
      }
    }
    return last;
  }

  /** Drops the oldest held alerts past `maxHeldAlerts` or `maxHeldBytes` (counted, logged). */
  #bound(): void {
    const step = this.#pending;
    if (!step) return;
    const { maxHeldAlerts = MAX_HELD_ALERTS, maxHeldBytes = MAX_HELD_BYTES } = this.#o;
    const records = step.records;
    let n = Math.max(0, records.length - maxHeldAlerts);
    let bytes = 0;
    for (let i = n; i < records.length; i++) bytes += records[i].record.body.length;
    for (; n < records.length && bytes > maxHeldBytes; n++) bytes -= records[n].record.body.length;
    if (n === 0) return;
    step.records = records.slice(n);
    this.#dropped += n;
    this.#o.log.error("alerts dropped: too many could not be kept", {
      dropped: n,
      dropped_total: this.#dropped,
      alerts_held: step.records.length,
    });
  }
}
