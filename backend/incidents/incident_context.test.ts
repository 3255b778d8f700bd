import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { originalAlert, post } from "../alerts/_fixtures.ts";
import { createBackendApp } from "../app.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";
import { incidentAlert } from "./_fixtures.ts";
import { createIncidentRepository } from "./incident_repository.ts";

type Alert = ReturnType<typeof incidentAlert> & { kind?: "process" | "sensor" };

/** A history as the engine sends it: `values` one second apart, ending at the alert's frame. */
function history(values: (number | null)[], onset: number, extra: Record<string, unknown> = {}) {
  return { start: "2026-11-24T08:58:00.000Z", step_ms: 1000, values, onset, ...extra };
}

const related = [
  { feature_idx: 17, feature: "feature_17", weight: 0.6, moved: 3.5 },
  { feature_idx: 900, feature: 'tag "<i>900</i>"', weight: 0.25, moved: -0.2 },
];

/** Every permutation of `items` (a few items only). */
function permutations<T>(items: T[]): T[][] {
  if (items.length <= 1) return [items];
  return items.flatMap((x, i) =>
    permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [x, ...rest]),
  );
}

for (const target of testTargets()) {
  describe(`incident context on ${target.kind}`, () => {
    let db: TestDatabase;
    let app: ReturnType<typeof createBackendApp>;
    const store = async (alert: unknown) => {
      const res = await app.request("/api/v1/alert", post(alert));
      assert.equal(res.status, 201, await res.clone().text());
    };
    const json = async (path: string) => {
      const res = await app.request(path);
      assert.equal(res.status, 200, path);
      return res.json();
    };

    before(async () => {
      db = await target.open();
      app = createBackendApp({ database: db });
    });
    after(() => db.dispose());

    test("an alert's history, related sensors and kind are stored and served as sent", async () => {
      const incidentId = crypto.randomUUID();
      const alert: Alert = incidentAlert({
        incidentId,
        event: "opened",
        sensors: [{ idx: 4242, severity: 20 }],
      });
      const h = history([10, 10.5, 11, 40, 52], 3, {
        timestamps: [
          "2026-11-24T08:58:00.000Z",
          "2026-11-24T08:58:01.000Z",
          "2026-11-24T08:58:03.500Z",
          "2026-11-24T08:58:04.000Z",
          "2026-11-24T08:58:05.000Z",
        ],
        level: [null, 10, 10.2, 10.4, 10.5],
      });
      Object.assign(alert.anomalous_features[0], { history: h, related });
      alert.kind = "sensor";
      await store(alert);

      const stored = await json(`/api/v1/alerts/${alert.alert_id}`);
      assert.equal(stored.kind, "sensor");
      assert.deepEqual(stored.anomalous_features[0].history, h);
      assert.deepEqual(stored.anomalous_features[0].related, related);
      const listed = await json(`/api/v1/alerts?feature_idx=4242`);
      assert.deepEqual(listed.alerts[0].anomalous_features[0].history, h);

      const incident = await json(`/api/v1/incidents/${incidentId}`);
      assert.equal(incident.kind, "sensor");
      assert.deepEqual(incident.sensors[0].history, h);
      assert.deepEqual(incident.sensors[0].related, related);
      // Lists leave the context out: a page of incidents stays small.
      const page = await json("/api/v1/incidents?limit=1");
      assert.equal(page.incidents[0].incident_id, incidentId);
      assert.equal(page.incidents[0].kind, "sensor");
      assert.equal("history" in page.incidents[0].sensors[0], false);
      // Stored as JSON values, not as JSON text.
      const [types] = await db.sql`
        SELECT jsonb_typeof(history) AS history, jsonb_typeof(related) AS related
        FROM incident_sensor WHERE incident_id = ${incidentId}`;
      assert.deepEqual({ ...types }, { history: "object", related: "array" });
    });

    test("a sensor's history and related sensors come from its strongest alert", async () => {
      const incidentId = crypto.randomUUID();
      const [opened, updated, resolved] = [12, 30, 30].map((severity, n) => {
        const alert = incidentAlert({
          incidentId,
          event: (["opened", "updated", "resolved"] as const)[n],
          at: n * 3,
          sensors: [{ idx: 4242, severity }],
        });
        Object.assign(alert.anomalous_features[0], {
          history: history([1, 2, 3 + n], 1),
          related: [{ ...related[0], moved: n }],
        });
        return alert;
      });
      for (const alert of [resolved, opened, updated]) await store(alert);
      const [sensor] = (await json(`/api/v1/incidents/${incidentId}`)).sensors;
      // The updated and resolved alerts tie on severity: the earlier one's evidence stays.
      assert.deepEqual(sensor.history.values, [1, 2, 4]);
      assert.equal(sensor.related[0].moved, 1);
    });

    test("a stronger alert without context keeps the earlier alert's history, in any arrival order", async () => {
      for (const order of [
        [0, 1],
        [1, 0],
      ]) {
        const incidentId = crypto.randomUUID();
        // The opened alert carries the context; the resolved one repeats a higher peak, bare.
        const alerts = [12, 30].map((severity, n) => {
          const alert = incidentAlert({
            incidentId,
            event: n === 0 ? "opened" : "resolved",
            at: n * 3,
            sensors: [{ idx: 4242, severity }],
          });
          if (n === 0) {
            Object.assign(alert.anomalous_features[0], {
              history: history([1, 2, 3], 1),
              related: [related[0]],
            });
          }
          return alert;
        });
        for (const i of order) await store(alerts[i]);
        const [sensor] = (await json(`/api/v1/incidents/${incidentId}`)).sensors;
        assert.equal(sensor.severity, 30, `peak from the resolved alert (order ${order})`);
        assert.deepEqual(sensor.history?.values, [1, 2, 3], `history kept (order ${order})`);
        assert.equal(sensor.related?.[0].feature_idx, related[0].feature_idx);
      }
    });

    test("a page's read carries history only for the strongest sensors and the ones they name", async () => {
      const incidentId = crypto.randomUUID();
      const alert = incidentAlert({
        incidentId,
        event: "opened",
        sensors: [1, 2, 3, 4].map((idx) => ({ idx, severity: 50 - idx })),
      });
      alert.anomalous_features.forEach((f, n) => {
        // The strongest names the weakest as related.
        Object.assign(f, {
          history: history([n, n + 1], 1),
          related: [{ ...related[0], feature_idx: n === 0 ? 4 : 1 }],
        });
      });
      await store(alert);
      const incident = await createIncidentRepository(db).get(incidentId, 200, 1);
      const carried = incident!.sensors.map((s) => [s.feature_idx, "history" in s, "related" in s]);
      assert.deepEqual(carried, [
        [1, true, true],
        [2, false, false],
        [3, false, false],
        [4, true, false],
      ]);
      // The API gives every sensor's.
      const all = await json(`/api/v1/incidents/${incidentId}`);
      assert.ok(all.sensors.every((s: object) => "history" in s && "related" in s));
    });

    test("a page's read carries a related sensor that ranks below the list's length, so it is not called unflagged", async () => {
      const incidentId = crypto.randomUUID();
      // 210 flagged; the strongest names the weakest (idx 209) as related.
      const alert = incidentAlert({
        incidentId,
        event: "opened",
        sensors: Array.from({ length: 210 }, (_, idx) => ({ idx, severity: 300 - idx })),
      });
      Object.assign(alert.anomalous_features[0], {
        related: [{ ...related[0], feature_idx: 209, feature: "feature_209" }],
      });
      await store(alert);
      const incident = await createIncidentRepository(db).get(incidentId, 200, 1);
      assert.equal(incident!.sensors.length, 201);
      assert.equal(incident!.sensors.at(-1)?.feature_idx, 209);
      const page = await (await app.request(`/incidents/${incidentId}`)).text();
      const item = page.match(/<li data-feature-idx="209"[\s\S]*?<\/li>/)?.[0] ?? "";
      assert.match(item, /data-flagged="true"/);
      assert.match(item, /flagged too \(severity 91\)/);
    });

    test("an incident's kind is its latest alert's that carries one, whatever the arrival order", async () => {
      const kindOf = async (alerts: Alert[]) => {
        for (const alert of alerts) await store(alert);
        return (await json(`/api/v1/incidents/${alerts[0].incident_id}`)).kind;
      };
      // process at 0 s, sensor at 3 s, and a later alert that names no kind (an older engine).
      const build = (incidentId: string) =>
        (["process", "sensor", undefined] as const).map((kind, n) => {
          const alert: Alert = incidentAlert({
            incidentId,
            event: n === 0 ? "opened" : "updated",
            at: n * 3,
            sensors: [{ idx: 1, severity: 5 + n }],
          });
          if (kind) alert.kind = kind;
          return alert;
        });
      for (const order of permutations([0, 1, 2])) {
        const alerts = build(crypto.randomUUID());
        assert.equal(await kindOf(order.map((i) => alerts[i])), "sensor", `order ${order}`);
      }
      // Two alerts of the same frame time: the larger alert_id is the later one.
      for (const order of permutations([0, 1])) {
        const incidentId = crypto.randomUUID();
        const alerts = (["process", "sensor"] as const).map((kind) => {
          const alert: Alert = incidentAlert({
            incidentId,
            event: "opened",
            at: 0,
            sensors: [{ idx: 1, severity: 5 }],
          });
          alert.kind = kind;
          return alert;
        });
        const later = alerts[0].alert_id > alerts[1].alert_id ? alerts[0] : alerts[1];
        assert.equal(await kindOf(order.map((i) => alerts[i])), later.kind, `tie ${order}`);
      }
    });

    test("alerts without the new fields are stored as before", async () => {
      const alertId = crypto.randomUUID();
      await store(originalAlert({ alert_id: alertId }));
      const storedOriginal = await json(`/api/v1/alerts/${alertId}`);
      assert.equal("kind" in storedOriginal, false);
      assert.deepEqual(storedOriginal.anomalous_features, [{ feature_idx: 5, score: 0.95 }]);

      const incidentId = crypto.randomUUID();
      const alert = incidentAlert({
        incidentId,
        event: "opened",
        sensors: [{ idx: 8, severity: 9 }],
      });
      await store(alert);
      const stored = await json(`/api/v1/alerts/${alert.alert_id}`);
      assert.equal("kind" in stored, false);
      assert.deepEqual(stored.anomalous_features, alert.anomalous_features);
      const incident = await json(`/api/v1/incidents/${incidentId}`);
      assert.equal(incident.kind, "process", "the default kind");
      assert.deepEqual(Object.keys(incident.sensors[0]).sort(), [
        "feature",
        "feature_idx",
        "peak_at",
        "score",
        "severity",
        "statistic",
        "typical",
        "value",
        "window",
      ]);
    });

    test("an alert with a malformed history or kind is refused and stores nothing", async () => {
      const count = async () => (await db.sql`SELECT count(*)::int AS n FROM alert`)[0].n as number;
      const before = await count();
      const bad: [string, (a: Alert) => void][] = [
        ["onset", (a) => Object.assign(a.anomalous_features[0], { history: history([1, 2], 2) })],
        [
          "level",
          (a) =>
            Object.assign(a.anomalous_features[0], { history: history([1, 2], 0, { level: [1] }) }),
        ],
        [
          "weight",
          (a) =>
            Object.assign(a.anomalous_features[0], { related: [{ ...related[0], weight: 2 }] }),
        ],
        ["kind", (a) => Object.assign(a, { kind: "instrument" })],
      ];
      for (const [what, spoil] of bad) {
        const alert: Alert = incidentAlert({
          incidentId: crypto.randomUUID(),
          event: "opened",
          sensors: [{ idx: 3, severity: 9 }],
        });
        spoil(alert);
        const res = await app.request("/api/v1/alert", post(alert));
        assert.equal(res.status, 422, what);
        assert.equal((await res.json()).error, "invalid_alert", what);
      }
      assert.equal(await count(), before);
    });
  });
}
