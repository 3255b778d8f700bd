// Test fixtures: incident alerts as our engine sends them (contract f4cd602), built per test.
import assert from "node:assert/strict";
import { post } from "../alerts/_fixtures.ts";

export interface SensorEvidence {
  idx: number;
  severity: number;
  value?: number;
  name?: string;
  statistic?: string;
}

/** One alert of an incident; `at` is the frame time in seconds after `start`. */
export function incidentAlert(o: {
  incidentId: string;
  event: "opened" | "updated" | "resolved";
  start?: string;
  at?: number;
  streamId?: string;
  sensors: SensorEvidence[];
  alertId?: string;
  /** The model that scored it (default `featurewise_ocsvm` version `2.2.0`). */
  model?: { name?: string; version: string };
}) {
  const start = o.start ?? "2026-11-24T09:00:00.000Z";
  const frame = new Date(Date.parse(start) + (o.at ?? 0) * 1000).toISOString();
  const features = o.sensors.map((s) => ({
    feature_idx: s.idx,
    feature: s.name ?? `feature_${s.idx}`,
    score: Math.min(1, 0.9 + s.severity / 1000),
    severity: s.severity,
    value: s.value ?? 40 + s.severity,
    window: [10, 11, 10.5, 12, s.value ?? 40 + s.severity],
    typical: { low: 8, high: 13 },
    statistic: s.statistic ?? "level",
  }));
  return {
    alert_id: o.alertId ?? crypto.randomUUID(),
    timestamp: frame,
    frame_timestamp: frame,
    anomaly_detected: o.event !== "resolved",
    num_anomalous_features: features.length,
    anomalous_features: features,
    stream_id: o.streamId ?? "default",
    max_score: Math.max(0, ...features.map((f) => f.score)),
    max_severity: Math.max(0, ...features.map((f) => f.severity)),
    threshold: 0.9,
    model_name: o.model?.name ?? "featurewise_ocsvm",
    model_version: o.model?.version ?? "2.2.0",
    latency_ms: 4,
    incident_id: o.incidentId,
    event: o.event,
    incident_started_at: start,
  };
}

/** An incident's three events: opened on one sensor, updated as a second joins, resolved. */
export function lifecycle(incidentId: string, start?: string, streamId?: string) {
  return [
    incidentAlert({
      incidentId,
      start,
      streamId,
      event: "opened",
      at: 0,
      sensors: [{ idx: 4242, severity: 12 }],
    }),
    incidentAlert({
      incidentId,
      start,
      streamId,
      event: "updated",
      at: 3,
      sensors: [
        { idx: 4242, severity: 30 },
        { idx: 17, severity: 6 },
      ],
    }),
    incidentAlert({
      incidentId,
      start,
      streamId,
      event: "resolved",
      at: 12,
      sensors: [
        { idx: 4242, severity: 30 },
        { idx: 17, severity: 6 },
      ],
    }),
  ];
}

/**
 * Stores, through `app`, an incident opened on one sensor of `streamId` at `start` (default 09:00
 * on 2026-11-24), judged by Ana with `verdict` (default a false alarm); answers its id.
 */
export async function judgedIncident(
  app: { request(path: string, init?: RequestInit): Response | Promise<Response> },
  o: { streamId: string; sensor: SensorEvidence; start?: string; verdict?: string; note?: string },
): Promise<string> {
  const alert = incidentAlert({
    incidentId: crypto.randomUUID(),
    event: "opened",
    start: o.start ?? "2026-11-24T09:00:00Z",
    streamId: o.streamId,
    sensors: [o.sensor],
  });
  const stored = await app.request("/api/v1/alert", post(alert));
  assert.equal(stored.status, 201, await stored.text());
  const judged = await app.request(
    `/api/v1/incidents/${alert.incident_id}/verdict`,
    post({ verdict: o.verdict ?? "false_positive", note: o.note, by: "Ana" }),
  );
  assert.equal(judged.status, 201, await judged.text());
  return alert.incident_id;
}
