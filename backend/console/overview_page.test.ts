// The Overview heatmap: its cells as a screen reader names them, and where an incident's sensors are placed.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { jsx } from "hono/jsx";
import { post } from "../alerts/_fixtures.ts";
import { createBackendApp } from "../app.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";
import { incidentAlert } from "../incidents/_fixtures.ts";
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

for (const target of testTargets()) {
  describe(`the Overview page on ${target.kind}`, () => {
    const NOW = Date.parse("2026-12-10T12:00:00.000Z");
    let db: TestDatabase;
    let app: ReturnType<typeof createBackendApp>;
    before(async () => {
      db = await target.open();
      app = createBackendApp({ database: db, clock: { now: () => NOW } });
    });
    after(() => db.dispose());

    /** The cells' names on `/overview?period=`, as a screen reader reads them. */
    async function cells(period: string): Promise<string[]> {
      const page = await (await app.request(`/overview?period=${period}`)).text();
      return [...page.matchAll(/<a href="\/incidents\/[^"]+" aria-label="([^"]*)"/g)]
        .map((m) => m[1])
        .sort();
    }

    test("a long incident's sensors are placed at their peaks, and one still open is not left out", async () => {
      const start = "2026-12-10T10:00:00.000Z";
      const long = crypto.randomUUID();
      const over = crypto.randomUUID();
      for (const alert of [
        // Open for two hours: sensor 1 since its start; sensor 2 joins, strongest, 90 s ago.
        incidentAlert({
          incidentId: long,
          event: "opened",
          start,
          sensors: [{ idx: 1, severity: 5 }],
        }),
        incidentAlert({
          incidentId: long,
          event: "updated",
          start,
          at: 7110,
          sensors: [
            { idx: 1, severity: 5 },
            { idx: 2, severity: 40 },
          ],
        }),
        // Over before the last hour began.
        incidentAlert({
          incidentId: over,
          event: "opened",
          start,
          sensors: [{ idx: 3, severity: 30 }],
        }),
        incidentAlert({ incidentId: over, event: "resolved", start, at: 1800, sensors: [] }),
      ]) {
        assert.equal((await app.request("/api/v1/alert", post(alert))).status, 201);
      }

      // The last hour (150 s slots): sensor 2 in the slot of its peak; sensor 1, of an incident
      // still open, peaked before the hour: in the first slot. Sensor 3's incident had ended.
      assert.deepEqual(await cells("1h"), [
        "feature_1, 2026-12-10 11:00Z to 11:02:30Z: severity 5",
        "feature_2, 2026-12-10 11:57:30Z to 12:00Z: severity 40",
      ]);
      // The last 6 hours (15 min slots): every sensor at its own peak, not at its incident's start.
      assert.deepEqual(await cells("6h"), [
        "feature_1, 2026-12-10 10:00Z to 10:15Z: severity 5",
        "feature_2, 2026-12-10 11:45Z to 12:00Z: severity 40",
        "feature_3, 2026-12-10 10:00Z to 10:15Z: severity 30",
      ]);
      const said = (await (await app.request("/overview?period=1h")).text()).replace(
        /<[^>]+>|\s+/g,
        " ",
      );
      assert.match(
        said,
        /Each cell is the highest severity a sensor reached in a time slot \(2\.5 min\), in the slot of that peak/,
      );
      assert.match(
        said,
        /An incident still open from before the period shows the earlier peaks of its sensors in the first slot/,
      );
    });
  });
}
