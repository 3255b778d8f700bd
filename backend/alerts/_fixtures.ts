// Test fixtures: alert bodies as the engine and the original design send them.

/** An alert as our engine sends it; `overrides` replace top-level fields. */
export function ourAlert(overrides: Record<string, unknown> = {}) {
  return {
    alert_id: crypto.randomUUID(),
    timestamp: "2026-11-24T09:00:00.000Z",
    anomaly_detected: true,
    num_anomalous_features: 2,
    anomalous_features: [
      { feature_idx: 17, score: 0.97, feature: "feature_17" },
      { feature_idx: 4051, score: 0.93, feature: "feature_4051" },
    ],
    stream_id: "default",
    frame_timestamp: "2026-11-24T08:59:59.000Z",
    max_score: 0.97,
    threshold: 0.9,
    model_name: "featurewise_ocsvm",
    model_version: "1.0.0",
    latency_ms: 3.2,
    ...overrides,
  };
}

/** An alert as the original design's engine sends it: none of our fields. */
export function originalAlert(overrides: Record<string, unknown> = {}) {
  return {
    timestamp: "2026-11-24T09:00:00.000Z",
    anomaly_detected: true,
    num_anomalous_features: 1,
    anomalous_features: [{ feature_idx: 5, score: 0.95 }],
    ...overrides,
  };
}

/** A POST of `body` (an object is sent as JSON, a string as is). */
export function post(body: unknown, headers: Record<string, string> = {}): RequestInit {
  return {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  };
}
