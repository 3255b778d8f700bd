import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Sql } from "postgres";
import { post } from "../alerts/_fixtures.ts";
import { createBackendApp } from "../app.ts";
import { type TestDatabase, tableReads, testTargets } from "../db/_test_databases.ts";
import { incidentAlert } from "./_fixtures.ts";
import { createQualityRepository, weekStart } from "./quality_repository.ts";

// A Tuesday: the report's last week starts on Monday 2026-11-23.
const NOW = Date.parse("2026-11-24T10:00:00Z");

const zero = {
  incidents: 0,
  true_positive: 0,
  false_positive: 0,
  maintenance: 0,
  sensor_fault: 0,
  none: 0,
};

test("weekStart is Monday 00:00 UTC of the week, Sundays included", () => {
  assert.equal(
    weekStart(new Date("2026-11-24T10:00:00Z")).toISOString(),
    "2026-11-23T00:00:00.000Z",
  );
  assert.equal(
    weekStart(new Date("2026-11-23T00:00:00Z")).toISOString(),
    "2026-11-23T00:00:00.000Z",
  );
  assert.equal(
    weekStart(new Date("2026-11-29T23:59:59Z")).toISOString(),
    "2026-11-23T00:00:00.000Z",
  );
  assert.equal(
    weekStart(new Date("2026-11-30T00:00:00Z")).toISOString(),
    "2026-11-30T00:00:00.000Z",
  );
});

for (const target of testTargets()) {
  describe(`quality API on ${target.kind}`, () => {
    let db: TestDatabase;
    let app: ReturnType<typeof createBackendApp>;

    // An incident opened at `start` on `stream` flagging `sensors`, then its verdicts in order.
    async function incident(start: string, stream: string, sensors: number[], verdicts: string[]) {
      const alert = incidentAlert({
        incidentId: crypto.randomUUID(),
        event: "opened",
        start,
        streamId: stream,
        sensors: sensors.map((idx, n) => ({ idx, severity: 20 - n })),
      });
      assert.equal((await app.request("/api/v1/alert", post(alert))).status, 201);
      for (const verdict of verdicts) {
        const res = await app.request(
          `/api/v1/incidents/${alert.incident_id}/verdict`,
          post({ verdict, by: "Ana" }),
        );
        assert.ok(res.status === 201 || res.status === 200, await res.text());
      }
    }
    const report = async (query: string) => {
      const res = await app.request(`/api/v1/quality?${query}`);
      assert.equal(res.status, 200, await res.clone().text());
      return res.json();
    };

    before(async () => {
      db = await target.open();
      app = createBackendApp({ database: db, clock: { now: () => NOW } });
      // Three weeks from Monday 2026-11-09; the first incident lies before them.
      await incident("2026-11-02T09:00:00Z", "line-a", [4242], ["false_positive"]);
      await incident("2026-11-10T09:00:00Z", "line-a", [17], []);
      await incident("2026-11-17T09:00:00Z", "line-a", [4242], ["maintenance"]);
      await incident("2026-11-18T09:00:00Z", "line-b", [4242], ["false_positive"]);
      await incident("2026-11-18T10:00:00Z", "line-b", [9], ["sensor_fault"]);
      await incident("2026-11-24T08:00:00Z", "line-a", [4242], ["true_positive", "false_positive"]);
      await incident("2026-11-24T09:00:00Z", "line-a", [4242, 17], ["false_positive"]);
    });
    after(() => db.dispose());

    test("GET /api/v1/quality counts incidents per week by their current verdict", async () => {
      const r = await report("weeks=3");
      assert.equal(r.from, "2026-11-09T00:00:00.000Z");
      assert.equal(r.to, "2026-11-30T00:00:00.000Z");
      assert.equal(r.weeks, 3);
      assert.equal(r.stream_id, null);
      assert.deepEqual(r.weekly, [
        { week_start: "2026-11-09T00:00:00.000Z", ...zero, incidents: 1, none: 1 },
        {
          week_start: "2026-11-16T00:00:00.000Z",
          ...zero,
          incidents: 3,
          maintenance: 1,
          false_positive: 1,
          sensor_fault: 1,
        },
        // The verdict changed from true to false positive: only the current one counts.
        { week_start: "2026-11-23T00:00:00.000Z", ...zero, incidents: 2, false_positive: 2 },
      ]);
      assert.deepEqual(r.totals, {
        ...zero,
        incidents: 6,
        false_positive: 3,
        maintenance: 1,
        sensor_fault: 1,
        none: 1,
        judged: 5,
        false_positive_share: 0.6,
      });
    });

    test("GET /api/v1/quality counts per stream and per sensor, most incidents first", async () => {
      const r = await report("weeks=3");
      assert.deepEqual(r.streams, [
        {
          stream_id: "line-a",
          ...zero,
          incidents: 4,
          false_positive: 2,
          maintenance: 1,
          none: 1,
          judged: 3,
          false_positive_share: 2 / 3,
        },
        {
          stream_id: "line-b",
          ...zero,
          incidents: 2,
          false_positive: 1,
          sensor_fault: 1,
          judged: 2,
          false_positive_share: 0.5,
        },
      ]);
      assert.deepEqual(r.sensors, [
        {
          feature_idx: 4242,
          feature: "feature_4242",
          ...zero,
          incidents: 4,
          false_positive: 3,
          maintenance: 1,
        },
        {
          feature_idx: 17,
          feature: "feature_17",
          ...zero,
          incidents: 2,
          false_positive: 1,
          none: 1,
        },
        { feature_idx: 9, feature: "feature_9", ...zero, incidents: 1, sensor_fault: 1 },
      ]);
    });

    test("GET /api/v1/quality ranks the sensors behind false positives per stream", async () => {
      const r = await report("weeks=3");
      assert.deepEqual(r.false_positive_sensors, [
        {
          stream_id: "line-a",
          feature_idx: 4242,
          feature: "feature_4242",
          names: ["feature_4242"],
          false_positives: 2,
          incidents: 3,
          last_false_positive_at: "2026-11-24T09:00:00.000Z",
        },
        {
          stream_id: "line-a",
          feature_idx: 17,
          feature: "feature_17",
          names: ["feature_17"],
          false_positives: 1,
          incidents: 2,
          last_false_positive_at: "2026-11-24T09:00:00.000Z",
        },
        {
          stream_id: "line-b",
          feature_idx: 4242,
          feature: "feature_4242",
          names: ["feature_4242"],
          false_positives: 1,
          incidents: 1,
          last_false_positive_at: "2026-11-18T09:00:00.000Z",
        },
      ]);
      const one = await report("weeks=3&sensors=1");
      assert.equal(one.sensors.length, 1);
      assert.deepEqual(one.false_positive_sensors, r.false_positive_sensors.slice(0, 1));
    });

    test("GET /api/v1/quality narrows to one stream, and a longer range takes older weeks in", async () => {
      const b = await report("weeks=3&stream_id=line-b");
      assert.equal(b.stream_id, "line-b");
      // The console's form sends an empty Stream field: every stream, as without it.
      assert.deepEqual(await report("weeks=3&stream_id="), await report("weeks=3"));
      assert.equal(b.totals.incidents, 2);
      assert.deepEqual(
        b.streams.map((s: { stream_id: string }) => s.stream_id),
        ["line-b"],
      );
      assert.deepEqual(
        b.false_positive_sensors.map((s: { stream_id: string }) => s.stream_id),
        ["line-b"],
      );
      const four = await report("weeks=4");
      assert.equal(four.weekly.length, 4);
      assert.equal(four.weekly[0].week_start, "2026-11-02T00:00:00.000Z");
      assert.equal(four.totals.false_positive, 4);
      assert.equal(four.false_positive_sensors[0].false_positives, 3);
      // The default is twelve weeks.
      const standard = await report("");
      assert.equal(standard.weekly.length, 12);
      assert.equal(standard.totals.incidents, 7);
    });

    test("GET /api/v1/quality with no incidents answers zeros and no share", async () => {
      const r = await report("weeks=1&stream_id=nowhere");
      assert.deepEqual(r.totals, { ...zero, judged: 0, false_positive_share: null });
      assert.deepEqual(r.weekly, [{ week_start: "2026-11-23T00:00:00.000Z", ...zero }]);
      assert.deepEqual(r.streams, []);
      assert.deepEqual(r.sensors, []);
      assert.deepEqual(r.false_positive_sensors, []);
    });

    test("GET /api/v1/quality rejects malformed parameters with invalid_request naming them", async () => {
      const cases: [string, string][] = [
        ["weeks=0", "weeks"],
        ["weeks=105", "weeks"],
        ["weeks=abc", "weeks"],
        ["weeks=", "weeks"],
        ["weeks=1.5", "weeks"],
        ["stream_id=a%20b", "stream_id"],
        ["sensors=0", "sensors"],
        ["sensors=101", "sensors"],
      ];
      for (const [query, name] of cases) {
        const res = await app.request(`/api/v1/quality?${query}`);
        assert.equal(res.status, 400, query);
        const body = await res.json();
        assert.equal(body.error, "invalid_request", query);
        assert.match(body.message, new RegExp(`'${name}'`), query);
      }
    });
  });

  describe(`quality report reads on ${target.kind}`, () => {
    let db: TestDatabase;
    // 150 incidents over the report's two weeks, after 4,000 in the year before, 4 sensors each.
    const inRange = 150 * 4;

    before(async () => {
      db = await target.open();
      // Straight into the tables, for volume. Enough incidents in range that the planner, asked
      // to join them to incident_sensor by incident_id alone, prefers reading all of it.
      await db.sql`
        INSERT INTO incident (incident_id, stream_id, started_at, last_alert_at, max_score,
          model_name, model_version, last_alert_id, opened_model_name, opened_model_version,
          first_alert_at, first_alert_id)
        SELECT gen_random_uuid(), 'line-' || (g % 4), t, t, 0.99, 'm', '1', gen_random_uuid(),
          'm', '1', t, gen_random_uuid()
        FROM generate_series(1, 4150) g, LATERAL (SELECT CASE WHEN g > 4000
          THEN '2026-11-16T00:00:00Z'::timestamptz + (g - 4000) * interval '1 hour'
          ELSE '2025-11-01T00:00:00Z'::timestamptz + g * interval '2 hours' END AS t) x`;
      await db.sql`
        INSERT INTO incident_sensor (incident_id, feature_idx, feature, severity, score, peak_at,
          peak_alert_id, started_at)
        SELECT i.incident_id, f, 'feature_' || f, f, 0.95, i.started_at, gen_random_uuid(),
          i.started_at
        FROM incident i, generate_series(1, 4) f`;
      await db.sql`
        INSERT INTO incident_verdict (incident_id, verdict, given_by, given_at)
        SELECT incident_id, 'false_positive', 'Ana', started_at FROM (
          SELECT incident_id, started_at, row_number() OVER (ORDER BY started_at) AS n
          FROM incident WHERE started_at >= '2026-11-16T00:00:00Z') x
        WHERE n % 3 = 0`;
      await db.sql`ANALYZE`;
    });
    after(() => db.dispose());

    test("the quality report reads incident_sensor for its range only, never all of it", async () => {
      const { report, before, after } = await db.sql.begin(async (tx) => {
        const before = await tableReads(tx, "incident_sensor");
        // On the transaction's connection, which the counters are of (a pool's own `Sql` type).
        const quality = createQualityRepository({ sql: tx as unknown as Sql, recover: () => {} });
        const report = await quality.report({ weeks: 2, now: new Date(NOW), sensors: 10 });
        return { report, before, after: await tableReads(tx, "incident_sensor") };
      });
      assert.equal(report.totals.incidents, 150);
      assert.equal(report.totals.false_positive, 50);
      assert.deepEqual(
        report.sensors.map((s) => [s.feature_idx, s.incidents, s.false_positive]),
        [
          [1, 150, 50],
          [2, 150, 50],
          [3, 150, 50],
          [4, 150, 50],
        ],
      );
      assert.equal(report.false_positive_sensors.length, 10);
      assert.equal(after.seqScans - before.seqScans, 0, "no sequential scan of incident_sensor");
      assert.equal(after.seqRows - before.seqRows, 0);
      // Two queries join the sensors (per sensor, per stream and sensor): each reads the range
      // (give or take a row a scan may count twice), nowhere near the 16,000 rows before it.
      const read = after.indexRows - before.indexRows;
      assert.ok(read < 3 * inRange, `read ${read} rows, ${inRange} in range`);
    });
  });
}
