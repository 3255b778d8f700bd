import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createBackendApp } from "../app.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";
import { ourAlert, post } from "./_fixtures.ts";

// 30 alerts, one a minute from 10:00, on two streams; feature 100 in every third alert.
const T0 = Date.parse("2026-11-24T10:00:00.000Z");
const alerts = Array.from({ length: 30 }, (_, i) => {
  const features = [{ feature_idx: i, score: 0.91, feature: `feature_${i}` }];
  if (i % 3 === 0)
    features.push({ feature_idx: 100, score: 0.9 + i / 1000, feature: "feature_100" });
  return ourAlert({
    timestamp: new Date(T0 + i * 60_000).toISOString(),
    stream_id: i % 2 === 0 ? "line-a" : "line-b",
    num_anomalous_features: features.length,
    anomalous_features: features,
    max_score: Math.max(...features.map((f) => f.score)),
  });
});
const minute = (i: number) => new Date(T0 + i * 60_000).toISOString();

for (const target of testTargets()) {
  describe(`alert queries on ${target.kind}`, () => {
    let db: TestDatabase;
    let app: ReturnType<typeof createBackendApp>;
    const get = async (query: string) => {
      const res = await app.request(`/api/v1/alerts${query}`);
      return { status: res.status, body: await res.json() };
    };
    const ids = (body: { alerts: { alert_id: string }[] }) => body.alerts.map((a) => a.alert_id);

    before(async () => {
      db = await target.open();
      app = createBackendApp({ database: db });
      for (const alert of alerts) {
        assert.equal((await app.request("/api/v1/alert", post(alert))).status, 201);
      }
    });
    after(() => db.dispose());

    test("GET /api/v1/alerts lists newest first", async () => {
      const { status, body } = await get("?limit=5");
      assert.equal(status, 200);
      assert.deepEqual(
        ids(body),
        [29, 28, 27, 26, 25].map((i) => alerts[i].alert_id),
      );
      assert.equal(typeof body.next_cursor, "string");
    });

    test("GET /api/v1/alerts pages through everything with the cursor, once each", async () => {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const query: string = `?limit=7${cursor ? `&cursor=${cursor}` : ""}`;
        const { body } = await get(query);
        seen.push(...ids(body));
        cursor = body.next_cursor;
      } while (cursor);
      assert.deepEqual(seen, alerts.map((a) => a.alert_id).reverse());
    });

    test("GET /api/v1/alerts filters by stream and time range", async () => {
      const { body } = await get(`?stream_id=line-b&from=${minute(10)}&to=${minute(20)}`);
      assert.deepEqual(
        ids(body),
        [19, 17, 15, 13, 11].map((i) => alerts[i].alert_id),
      );
      const epoch = await get(`?from=${T0 + 28 * 60_000}`);
      assert.deepEqual(
        ids(epoch.body),
        [29, 28].map((i) => alerts[i].alert_id),
      );
    });

    test("GET /api/v1/alerts filters by feature and that feature's score, with pagination", async () => {
      const all = await get("?feature_idx=100&limit=4");
      assert.deepEqual(
        ids(all.body),
        [27, 24, 21, 18].map((i) => alerts[i].alert_id),
      );
      const rest = await get(`?feature_idx=100&limit=4&cursor=${all.body.next_cursor}`);
      assert.deepEqual(
        ids(rest.body),
        [15, 12, 9, 6].map((i) => alerts[i].alert_id),
      );
      const strong = await get("?feature_idx=100&min_score=0.92");
      assert.deepEqual(
        ids(strong.body),
        [27, 24, 21].map((i) => alerts[i].alert_id),
      );
      assert.equal(strong.body.next_cursor, null);
    });

    test("GET /api/v1/alerts filters by the alert's max score", async () => {
      const { body } = await get("?min_score=0.925");
      assert.deepEqual(
        ids(body),
        [27].map((i) => alerts[i].alert_id),
      );
    });

    test("GET /api/v1/alerts caps the features listed per alert", async () => {
      const { body } = await get(`?limit=1&from=${minute(27)}&to=${minute(28)}&features=1`);
      assert.deepEqual(body.alerts[0].anomalous_features, [
        { feature_idx: 100, score: 0.927, feature: "feature_100" },
      ]);
      assert.equal(body.alerts[0].num_anomalous_features, 2);
    });

    test("GET /api/v1/alerts rejects malformed parameters with 400 naming them", async () => {
      for (const [query, name] of [
        ["?limit=0", "limit"],
        ["?limit=abc", "limit"],
        ["?feature_idx=-1", "feature_idx"],
        ["?min_score=2", "min_score"],
        ["?from=yesterday", "from"],
        // Text `new Date` would read (some of it in the server's zone): not a time here.
        ["?from=-1", "from"],
        ["?to=06%2F12%2F2026", "to"],
        ["?from=foo%201", "from"],
        ["?stream_id=a%20b", "stream_id"],
        ["?cursor=bm9wZQ", "cursor"],
      ]) {
        const { status, body } = await get(query);
        assert.equal(status, 400, query);
        assert.equal(body.error, "invalid_request");
        assert.match(body.message, new RegExp(`'${name}'`));
      }
    });

    test("GET /api/v1/alerts/summary counts alerts per stream and top features in a range", async () => {
      const res = await app.request(
        `/api/v1/alerts/summary?from=${minute(0)}&to=${minute(12)}&top=2`,
      );
      assert.equal(res.status, 200);
      const body = await res.json();
      assert.equal(body.total_alerts, 12);
      assert.deepEqual(
        body.streams.map((s: { stream_id: string; alerts: number }) => [s.stream_id, s.alerts]),
        [
          ["line-a", 6],
          ["line-b", 6],
        ],
      );
      assert.equal(body.streams[0].last_alert_at, minute(10));
      assert.deepEqual(body.top_features[0], {
        feature_idx: 100,
        feature: "feature_100",
        alerts: 4,
        max_score: 0.909,
      });
      assert.equal(body.top_features.length, 2);
    });
  });
}
