// The shapes incidents take between the repository, the HTTP API and the console.
import type { FaultKind, IncidentEvent } from "../../contracts/alert.ts";
import type { CursorKey } from "../alerts/_cursor.ts";
import type { AlertFeature } from "../alerts/alert_types.ts";

export type IncidentState = "open" | "resolved";

/** Who acknowledged an incident, when, and why. */
export interface Acknowledgement {
  by: string;
  note: string;
  at: string;
}

/** What an operator judged an incident to be. */
export const VERDICTS = ["true_positive", "false_positive", "maintenance", "sensor_fault"] as const;
export type VerdictKind = (typeof VERDICTS)[number];

/** One operator verdict on an incident: what, the cause and a note when given, who and when. */
export interface Verdict {
  verdict: VerdictKind;
  cause: string | null;
  note: string | null;
  by: string;
  at: string;
}

/** A flagged sensor of an incident with the evidence of its strongest alert. */
export interface IncidentSensor extends AlertFeature {
  peak_at: string;
}

/** An incident as lists show it: counts, the strongest few sensors, the acknowledgement. */
export interface IncidentSummary {
  incident_id: string;
  stream_id: string;
  state: IncidentState;
  started_at: string;
  last_alert_at: string;
  resolved_at: string | null;
  max_severity: number | null;
  max_score: number;
  alerts: number;
  num_sensors: number;
  /** The model (name, version) that scored the latest alert; null when the alerts did not say. */
  model_name: string | null;
  model_version: string | null;
  /** The model of the earliest alert, the one that opened it (differs after a version switch). */
  opened_model_name: string | null;
  opened_model_version: string | null;
  /** `sensor` (an instrument failing) or `process`: its latest alert's judgement that gave one. */
  kind: FaultKind;
  /**
   * The maintenance silence its latest alert fell under, or null; kept after that silence ended
   * (the record of what covered it). Whether it covers the incident now is `silenced`.
   */
  silence_id: string | null;
  /**
   * Whether the incident is under a silence now: `silence_id` names a silence that still holds
   * (not past its end, not expired, inside a weekly window). Stored and shown while it holds, not
   * notified; once it no longer holds over an open incident the notifier tells the routes that
   * heard nothing of it (notify/README.md). What the console's "silenced" follows.
   */
  silenced: boolean;
  /**
   * The incident of the same stream and model that opened after it while its engine never ended
   * it (the engine lost its state): the backend resolved it at its last alert. Null otherwise.
   */
  superseded_by: string | null;
  sensors: IncidentSensor[];
  acknowledged: Acknowledgement | null;
  /** The current (latest) verdict, or null before the first. */
  verdict: Verdict | null;
}

/** One step of an incident's timeline. */
export type TimelineEntry =
  | {
      event: IncidentEvent;
      at: string;
      alert_id: string;
      num_sensors: number;
      max_severity: number | null;
      /** The model that scored this alert. */
      model_name: string | null;
      model_version: string | null;
    }
  | { event: "acknowledged"; at: string; by: string; note: string };

/** An incident with every sensor's evidence, its timeline and its verdicts, oldest first. */
export interface IncidentDetail extends IncidentSummary {
  timeline: TimelineEntry[];
  /** Every verdict given, oldest first; the last one is `verdict`. */
  verdicts: Verdict[];
}

export interface IncidentFilter {
  state?: IncidentState;
  acknowledged?: boolean;
  /** By the current verdict; `none`: no verdict yet. */
  verdict?: VerdictKind | "none";
  streamId?: string;
  featureIdx?: number;
  /** On `started_at`: [from, to). */
  from?: Date;
  to?: Date;
  limit: number;
  cursor?: CursorKey;
  /** How many of the strongest sensors each listed incident carries. */
  sensorsPerIncident: number;
}

export interface IncidentPage {
  incidents: IncidentSummary[];
  next_cursor: string | null;
}

/** Severity over time × the most severe flagged sensors: what the console's heatmap draws. */
export interface Heatmap {
  from: string;
  to: string;
  bucket_ms: number;
  buckets: number;
  sensors: { feature_idx: number; feature: string | null; max_severity: number | null }[];
  /** Only non-empty cells; each names the incident holding the strongest evidence in it. */
  cells: {
    feature_idx: number;
    bucket: number;
    severity: number | null;
    score: number;
    incident_id: string;
  }[];
}
