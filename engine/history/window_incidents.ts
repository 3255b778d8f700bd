// Which incident each scored window is part of, as the alert path decided it: what the training history tags frames with.
import type { IncidentEvent } from "../../scoring/incident_tracker.ts";

/** A scored batch's incident membership, row by row, as the alert path's own incident state has it. */
export interface WindowIncidents {
  /** The incident the window is part of: open after it, or resolved by it; "" for none. */
  readonly incident: string[];
  /** When the incident the window opened started (its first flagged window's time); NaN when it opened none. */
  readonly openedAt: Float64Array;
  /** 1 when the alert path still holds the stream after the window (an incident open or confirming). */
  readonly holding: Uint8Array;
}

/** An empty membership for `size` rows (none in an incident, none held). */
export function windowIncidents(size: number): WindowIncidents {
  return {
    incident: new Array<string>(size).fill(""),
    openedAt: new Float64Array(size).fill(Number.NaN),
    holding: new Uint8Array(size),
  };
}

/**
 * Follows one alert pipeline's incident tracker (its events, and the state it restored at start
 * or at a takeover) to say which incident each window it observes is part of. The tracker is the
 * one source of truth: the ids written into the training history are the ids of the alerts the
 * backend got, after a restart or a takeover too. Holds one entry per open incident.
 *
 * @example
 * const events = tracker.observe(window);
 * membership.window(rows, r, window.streamId, events, tracker.has(window.streamId));
 */
export class IncidentMembership {
  /** Per stream, the id of its open incident. */
  readonly #open = new Map<string, string>();

  /** The tracker restored `streamId` with incident `incidentId` open (start-up, takeover). */
  restored(streamId: string, incidentId: string): void {
    this.#open.set(streamId, incidentId);
  }

  /** Events the tracker made outside a window: a stale stream, a machine stop, other features. */
  follow(events: readonly IncidentEvent[]): void {
    for (const e of events) {
      if (e.event === "opened") this.#open.set(e.streamId, e.incidentId);
      else if (e.event === "resolved") this.#open.delete(e.streamId);
    }
  }

  /**
   * Row `r` of `rows`: a window of `streamId` that caused `events`, after which the tracker
   * holds the stream (`holding`) or not.
   */
  window(
    rows: WindowIncidents,
    r: number,
    streamId: string,
    events: readonly IncidentEvent[],
    holding: boolean,
  ): void {
    let resolved = "";
    for (const e of events) {
      if (e.event === "opened") {
        this.#open.set(streamId, e.incidentId);
        rows.openedAt[r] = e.startedAt;
      } else if (e.event === "resolved") {
        this.#open.delete(streamId);
        resolved = e.incidentId;
      }
    }
    // A tracker that no longer holds the stream has no incident open on it.
    if (!holding) this.#open.delete(streamId);
    rows.incident[r] = this.#open.get(streamId) ?? resolved;
    rows.holding[r] = holding ? 1 : 0;
  }
}
