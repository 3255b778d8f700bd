// The Overview heatmap's cells, as a screen reader names them.
import assert from "node:assert/strict";
import { test } from "node:test";
import { jsx } from "hono/jsx";
import type { Heatmap } from "../incidents/incident_types.ts";
import { OverviewPage, slotLabel } from "./overview_page.tsx";

/** 24 one-hour slots from 2026-12-05 06:17Z, one cell in the 23rd (from 04:17Z). */
const MAP: Heatmap = {
  from: "2026-12-05T06:17:00.000Z",
  to: "2026-12-06T06:17:00.000Z",
  bucket_ms: 3_600_000,
  buckets: 24,
  sensors: [{ feature_idx: 7, feature: "feature_x", max_severity: 48.63 }],
  cells: [{ feature_idx: 7, bucket: 23, severity: 48.63, score: 0.9, incident_id: "i-1" }],
};

test("slotLabel says a slot's date, start and end with their zone", () => {
  assert.equal(slotLabel(MAP, 23), "2026-12-06 05:17Z to 06:17Z");
  // Across midnight the end's date is said too.
  assert.equal(slotLabel(MAP, 17), "2026-12-05 23:17Z to 2026-12-06 00:17Z");
  // Slots of the last hour (2.5 min) start on half minutes.
  const hour = { ...MAP, from: "2026-12-06T05:17:00.000Z", bucket_ms: 150_000 };
  assert.equal(slotLabel(hour, 1), "2026-12-06 05:19:30Z to 05:22Z");
});

test("the Overview heatmap names each cell by its sensor, its slot with zone and end, and severity", async () => {
  const page = String(await jsx(OverviewPage, { map: MAP, period: "24h" }).toString());
  const labels = [...page.matchAll(/<a href="\/incidents\/i-1" aria-label="([^"]*)"/g)].map(
    (m) => m[1],
  );
  assert.deepEqual(labels, ["feature_x, 2026-12-06 05:17Z to 06:17Z: severity 48.63"]);
});
