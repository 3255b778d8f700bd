// A sensor renamed within a report's range (only in case, and unnamed in some alerts): the Quality report, heatmap and alert summary name it as it is called now.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { post } from "../alerts/_fixtures.ts";
import { createBackendApp } from "../app.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";
import { incidentAlert } from "./_fixtures.ts";

const NOW = Date.parse("2026-11-24T10:00:00Z");
const FROM = "2026-11-24T07:00:00.000Z";

/**
 * Two sensors renamed only in case, one each way (a collation puts upper case first or last, so
 * the largest name is the old one for one of them on any database), and one named in some
 * alerts only: `[stream, feature_idx, names oldest first (undefined: no name)]`.
 */
const RENAMED: [string, number, (string | undefined)[]][] = [
  ["line-up", 9001, ["FIC-101", undefined, "fic-101"]],
  ["line-down", 9002, ["fic-102", "FIC-102"]],
  ["line-half", 9003, ["TI-103", undefined]],
];

for (const target of testTargets()) {
  describe(`a renamed sensor's name on ${target.kind}`, () => {
    let db: TestDatabase;
    let app: ReturnType<typeof createBackendApp>;

    before(async () => {
      db = await target.open();
      app = createBackendApp({ database: db, clock: { now: () => NOW } });
      for (const [stream, idx, names] of RENAMED) {
        for (const [n, name] of names.entries()) {
          const alert = incidentAlert({
            incidentId: crypto.randomUUID(),
            event: "opened",
            start: new Date(Date.parse("2026-11-24T08:00:00Z") + n * 1_800_000).toISOString(),
            streamId: stream,
            sensors: [{ idx, severity: 10 }],
          });
          const feature: { feature?: string } = alert.anomalous_features[0];
          if (name === undefined) delete feature.feature;
          else feature.feature = name;
          const stored = await app.request("/api/v1/alert", post(alert));
          assert.equal(stored.status, 201, await stored.text());
          const judged = await app.request(
            `/api/v1/incidents/${alert.incident_id}/verdict`,
            post({ verdict: "false_positive", by: "Ana" }),
          );
          assert.equal(judged.status, 201, await judged.text());
        }
      }
    });
    after(() => db.dispose());

    /** The latest name each sensor was given, by feature_idx. */
    const latest = new Map(
      RENAMED.map(([, idx, names]) => [idx, names.findLast((n) => n !== undefined)]),
    );

    test("the Quality report names each sensor by its latest name, and lists every name it had", async () => {
      const r = await (await app.request("/api/v1/quality?weeks=1")).json();
      for (const [stream, idx, names] of RENAMED) {
        const row = r.false_positive_sensors.find(
          (s: { stream_id: string; feature_idx: number }) =>
            s.stream_id === stream && s.feature_idx === idx,
        );
        assert.equal(row.feature, latest.get(idx), `${stream} ${idx}`);
        const expected = [...new Set(names.map((n) => n ?? `feature_${idx}`))].sort();
        assert.deepEqual(row.names, expected, `${stream} ${idx}`);
        const sensor = r.sensors.find((s: { feature_idx: number }) => s.feature_idx === idx);
        assert.equal(sensor.feature, latest.get(idx), `per sensor ${idx}`);
      }
    });

    test("the heatmap names each sensor by its latest name", async () => {
      const res = await app.request(
        `/api/v1/incidents/heatmap?from=${FROM}&to=2026-11-24T10:00:00.000Z&sensors=10`,
      );
      assert.equal(res.status, 200, await res.clone().text());
      const { sensors } = await res.json();
      for (const [, idx] of RENAMED) {
        const row = sensors.find((s: { feature_idx: number }) => s.feature_idx === idx);
        assert.equal(row.feature, latest.get(idx), `heatmap ${idx}`);
      }
    });

    test("the alert summary's top features name each by its latest name", async () => {
      const res = await app.request(`/api/v1/alerts/summary?from=${FROM}`);
      assert.equal(res.status, 200, await res.clone().text());
      const { top_features } = await res.json();
      for (const [, idx, names] of RENAMED) {
        const row = top_features.find((s: { feature_idx: number }) => s.feature_idx === idx);
        assert.equal(row.feature, latest.get(idx), `summary ${idx}`);
        assert.equal(row.alerts, names.length);
      }
    });
  });
}
