// One step of the alert pipeline's persistence (save state → submit alerts → delete), and how a failed step absorbs later ones.
import type { AlertRecord } from "./alert_sender.ts";
import type { StoredIncidentState } from "./incident_state_store.ts";

/** An alert and the stream whose event made it. */
export interface StreamRecord {
  streamId: string;
  record: AlertRecord;
}

/**
 * What is left to do of one persistence step, in this order: save `changes` (durably when there
 * are `records`: they carry them), submit `records` to the outbox, then delete the `tombstones`
 * (resolved streams, kept until their last alerts were in the outbox; a stream with a marker of
 * what it was forgotten at keeps that instead). Each part is emptied once
 * done, so a step retried after a failure goes on where it stopped.
 */
export interface PersistStep {
  /** Per stream, the state to save; `undefined` deletes it. */
  changes: Map<string, StoredIncidentState | undefined>;
  records: StreamRecord[];
  tombstones: Set<string>;
}

/**
 * `older` (a step that failed, or still waits) followed by `newer`, as one step: each stream's
 * newest state wins, the alerts stay in order, and a stream's alerts not yet in the outbox stay
 * in the state saved for it, so a crash between the save and the submit still loses none of
 * them. Its memory is one state per changed stream plus the alerts not yet submitted, however
 * many steps it took in. `older` is taken over (its maps and list grow in place), `newer` is read.
 *
 * @example pending = pending ? mergeSteps(pending, step) : step;
 */
export function mergeSteps(older: PersistStep, newer: PersistStep): PersistStep {
  const changes = older.changes;
  const tombstones = older.tombstones;
  // Each stream's unsent alerts, gathered once: a merge runs on every batch while saves fail,
  // with up to 10,000 alerts held and every open incident's stream dirty.
  const byStream = new Map<string, AlertRecord[]>();
  if (newer.changes.size > 0) {
    for (const { streamId, record } of older.records) {
      const list = byStream.get(streamId);
      if (list) list.push(record);
      else byStream.set(streamId, [record]);
    }
  }
  for (const [streamId, state] of newer.changes) {
    tombstones.delete(streamId);
    const unsent = byStream.get(streamId) ?? [];
    if (unsent.length === 0) {
      changes.set(streamId, state);
      continue;
    }
    const fresh = state?.alerts ?? [];
    const ids = new Set(fresh.map((r) => r.id));
    const alerts = [...unsent.filter((r) => !ids.has(r.id)), ...fresh];
    if (state?.snapshot) {
      changes.set(streamId, { ...state, alerts });
    } else {
      // Forgotten since: keep the alerts until they are in the outbox, then delete (or leave
      // the marker of a stream whose windows may be handed over again).
      changes.set(streamId, state?.forgotten ? { alerts, forgotten: state.forgotten } : { alerts });
      tombstones.add(streamId);
    }
  }
  for (const streamId of newer.tombstones) tombstones.add(streamId);
  for (const record of newer.records) older.records.push(record);
  return { changes, records: older.records, tombstones };
}
