// Recorder tests' alert path: a real incident tracker whose windows' membership is followed as AlertPipeline follows its own.
import { IncidentTracker, type IncidentTrackerOptions } from "../../../scoring/incident_tracker.ts";
import type { ScoredBatch } from "../../batch/window_scorer.ts";
import type { RecordedModel } from "../history_recorder.ts";
import { IncidentMembership, type WindowIncidents, windowIncidents } from "../window_incidents.ts";

/** The tracker settings of the recorder tests: 2 of 3 windows confirm, 3 quiet ones resolve. */
export const TEST_TRACKER: Omit<IncidentTrackerOptions, "nFeatures" | "modelVersion"> = {
  confirmK: 2,
  confirmN: 3,
  quietWindows: 3,
  updateMinMs: 0,
  updateSeverityRise: 2,
  maxFeatures: 10,
};

/**
 * An alert path's incident state for one model: `of(batch)` observes a batch's windows with the
 * tracker and says which incident each is part of, the way `AlertPipeline.scored` does;
 * `machineStopped` and `restarted` do what the pipeline does at a stop and at a restart.
 */
export class AlertPathIncidents {
  readonly tracker: IncidentTracker;
  readonly #membership = new IncidentMembership();
  readonly #settings: Omit<IncidentTrackerOptions, "nFeatures" | "modelVersion">;
  readonly #model: RecordedModel;

  constructor(model: RecordedModel, settings: Partial<typeof TEST_TRACKER> = {}) {
    this.#model = model;
    this.#settings = { ...TEST_TRACKER, ...settings };
    this.tracker = new IncidentTracker({
      nFeatures: model.n_features,
      modelVersion: model.version,
      ...this.#settings,
    });
  }

  of(batch: ScoredBatch): WindowIncidents {
    const rows = windowIncidents(batch.size);
    for (let r = 0; r < batch.size; r++) {
      const streamId = batch.streamIds[r];
      const flagged = batch.flagged.subarray(batch.flaggedFrom[r], batch.flaggedFrom[r + 1]);
      const events = this.tracker.observe({
        streamId,
        timestamp: batch.timestamps[r],
        flagged,
        evidence: [],
      });
      this.#membership.window(rows, r, streamId, events, this.tracker.has(streamId));
    }
    return rows;
  }

  machineStopped(streamId: string): void {
    this.#membership.follow(this.tracker.expire(streamId));
  }

  /** The alert path of the next engine start: every stream restored from this one's state. */
  restarted(): AlertPathIncidents {
    const next = new AlertPathIncidents(this.#model, this.#settings);
    for (const streamId of this.tracker.streams()) {
      const snapshot = this.tracker.snapshot(streamId)!;
      next.tracker.restore(streamId, snapshot);
      if (snapshot.incident) next.#membership.restored(streamId, snapshot.incident.id);
    }
    return next;
  }
}
