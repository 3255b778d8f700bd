// The Incident page's "Similar past incidents" table, as a screen reader meets it.
import assert from "node:assert/strict";
import { test } from "node:test";
import { jsx } from "hono/jsx";
import { SimilarSection } from "./similar_section.tsx";

test("the similar incidents table has a caption that says what it lists", async () => {
  const found = {
    incident_id: "i-0",
    model_name: "m",
    sensors: [{ feature_idx: 7, feature: "feature_7" }],
    similar: [
      {
        incident_id: "i-1",
        stream_id: "line-a",
        state: "resolved" as const,
        kind: "process" as const,
        started_at: "2026-12-01T10:00:00.000Z",
        resolved_at: "2026-12-01T10:05:00.000Z",
        duration_ms: 300_000,
        max_severity: 20,
        model_name: "m",
        model_version: "1",
        shared: [{ feature_idx: 7, feature: "feature_7" }],
        overlap: 1,
        verdict: null,
      },
    ],
  };
  const html = String(await jsx(SimilarSection, { found }).toString());
  assert.match(
    html,
    /<table class="similar"><caption>Earlier incidents of this model sharing its strongest sensors, newest first<\/caption><thead>/,
  );
});
