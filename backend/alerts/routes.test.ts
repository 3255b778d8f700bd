import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { FLOAT32_MIN_MAGNITUDE } from "../../contracts/alert.ts";
import { FLOAT32_MAX } from "../../contracts/frame.ts";
import { createBackendApp } from "../app.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";
import { originalAlert, ourAlert, post } from "./_fixtures.ts";

for (const target of testTargets()) {
  describe(`alert API on ${target.kind}`, () => {
    let db: TestDatabase;
    let app: ReturnType<typeof createBackendApp>;
    const rows = async (alertId: string) => {
      const [a] = await db.sql`SELECT count(*)::int AS n FROM alert WHERE alert_id = ${alertId}`;
      const [f] = await db.sql`
        SELECT count(*)::int AS n FROM alert_feature WHERE alert_id = ${alertId}`;
      return { alerts: a.n as number, features: f.n as number };
    };
    const total = async () => (await db.sql`SELECT count(*)::int AS n FROM alert`)[0].n as number;

    before(async () => {
      db = await target.open();
      app = createBackendApp({ database: db });
    });
    after(() => db.dispose());

    test("POST /api/v1/alert stores an alert with its features and answers 201", async () => {
      const alert = ourAlert();
      const res = await app.request("/api/v1/alert", post(alert));
      assert.equal(res.status, 201);
      assert.deepEqual(await res.json(), { status: "ok", alert_id: alert.alert_id });
      assert.deepEqual(await rows(alert.alert_id), { alerts: 1, features: 2 });
      const stored = await (await app.request(`/api/v1/alerts/${alert.alert_id}`)).json();
      assert.deepEqual(stored.anomalous_features, alert.anomalous_features);
      assert.equal(stored.timestamp, alert.timestamp);
      assert.equal(stored.model_name, "featurewise_ocsvm");
      assert.equal(stored.model_version, "1.0.0");
      const [listed] = (await (await app.request("/api/v1/alerts?limit=1")).json()).alerts;
      assert.equal(listed.alert_id, alert.alert_id);
      assert.equal(listed.model_name, "featurewise_ocsvm");
    });

    test("POST /api/v1/alert accepts an original-style alert and gives it a stable id", async () => {
      const body = JSON.stringify(originalAlert({ timestamp: "2026-11-24T10:00:00.000Z" }));
      const first = await (await app.request("/api/v1/alert", post(body))).json();
      const again = await (await app.request("/api/v1/alert", post(body))).json();
      assert.match(first.alert_id, /^[0-9a-f-]{36}$/);
      assert.equal(again.alert_id, first.alert_id);
      assert.deepEqual(await rows(first.alert_id), { alerts: 1, features: 1 });
      const stored = await (await app.request(`/api/v1/alerts/${first.alert_id}`)).json();
      assert.equal(stored.stream_id, "default");
      assert.equal(stored.max_score, 0.95);
      assert.equal(stored.model_name, null, "an original-style alert names no model");
      assert.equal(stored.model_version, null);
    });

    test("POST /api/v1/alert reads a zone-less timestamp (Python's isoformat) as UTC", async () => {
      // The original design's engine writes `datetime.now().isoformat()`: no zone, 6 fraction digits.
      const body = originalAlert({ timestamp: "2026-11-24T11:00:00.123456" });
      const res = await app.request("/api/v1/alert", post(body));
      assert.equal(res.status, 201);
      const { alert_id } = await res.json();
      const stored = await (await app.request(`/api/v1/alerts/${alert_id}`)).json();
      assert.equal(stored.timestamp, "2026-11-24T11:00:00.123Z");
    });

    test("POST /api/v1/alert refuses text PostgreSQL cannot store with 422, storing nothing", async () => {
      const before = await total();
      for (const alert of [
        ourAlert({ model_version: "v\u0000" }),
        ourAlert({
          anomalous_features: [{ feature_idx: 5, score: 0.95, feature: "f\u0000" }],
          num_anomalous_features: 1,
        }),
        ourAlert({
          anomalous_features: [
            {
              feature_idx: 5,
              score: 0.95,
              related: [{ feature_idx: 6, feature: "f\ud800", weight: 0.5, moved: 2 }],
            },
          ],
          num_anomalous_features: 1,
        }),
      ]) {
        const res = await app.request("/api/v1/alert", post(alert));
        assert.equal(res.status, 422);
        assert.equal((await res.json()).error, "invalid_alert");
      }
      assert.equal(await total(), before);
    });

    test("POST /api/v1/alert refuses history and related numbers beyond float32 with 422; the stored text stays near the sent size", async () => {
      // jsonb keeps a number as an exact decimal and reads it back without an exponent: 1e308
      // came back as 309 digits, so a 1.8 MB alert of them read back as 81 MB.
      const withEvidence = (evidence: Record<string, unknown>) =>
        ourAlert({
          num_anomalous_features: 1,
          anomalous_features: [
            { feature_idx: 17, score: 0.97, feature: "feature_17", ...evidence },
          ],
        });
      const history = (values: (number | null)[], extra: Record<string, unknown> = {}) => ({
        history: { start: "2026-11-24T08:00:00.000Z", step_ms: 1000, values, onset: 0, ...extra },
      });
      const related = (extra: Record<string, unknown>) => ({
        related: [{ feature_idx: 6, feature: "feature_6", weight: 0.5, moved: 2, ...extra }],
      });
      const before = await total();
      const cases: [unknown, RegExp][] = [
        [withEvidence(history(Array(1000).fill(1e308))), /history\.values\.0: .*float32/],
        [withEvidence(history([1, -1e39])), /history\.values\.1: .*float32/],
        [withEvidence(history([1, 5e-324])), /history\.values\.1: .*float32 magnitude/],
        [withEvidence(history([1, 1e-46])), /history\.values\.1: .*float32 magnitude/],
        [withEvidence(history([1, 2], { level: [null, 1e308] })), /history\.level\.1/],
        [withEvidence(history([1], { step_ms: 1e308 })), /history\.step_ms/],
        [withEvidence(related({ values: [null, 1e308] })), /related\.0\.values\.1/],
        [withEvidence(related({ moved: -1e308 })), /related\.0\.moved/],
        [withEvidence(related({ weight: 5e-324 })), /related\.0\.weight/],
      ];
      for (const [body, message] of cases) {
        const res = await app.request("/api/v1/alert", post(body));
        assert.equal(res.status, 422, JSON.stringify(body).slice(0, 200));
        const json = await res.json();
        assert.equal(json.error, "invalid_alert");
        assert.match(json.message, message);
      }
      assert.equal(await total(), before, "nothing stored");

      // The float32 range's edges are taken, and read back within a small multiple of their size.
      const edges = [FLOAT32_MAX, -FLOAT32_MIN_MAGNITUDE, 0, -21.5];
      const values = Array.from({ length: 1000 }, (_, i) => edges[i % edges.length]);
      const sent = { ...history(values), ...related({ values, moved: FLOAT32_MAX }) };
      const alert = withEvidence(sent);
      const res = await app.request("/api/v1/alert", post(alert));
      assert.equal(res.status, 201, await res.clone().text());
      const [{ h, r }] = await db.sql`
        SELECT length(history::text) AS h, length(related::text) AS r FROM alert_feature
        WHERE alert_id = ${alert.alert_id}`;
      assert.ok(
        h < 3 * JSON.stringify(sent.history).length,
        `history read back as ${h} characters`,
      );
      assert.ok(
        r < 3 * JSON.stringify(sent.related).length,
        `related read back as ${r} characters`,
      );
      const stored = await (await app.request(`/api/v1/alerts/${alert.alert_id}`)).json();
      assert.deepEqual(stored.anomalous_features[0].history.values, values);
    });

    test("POST /api/v1/alert without a signing secret refuses a web page's alert, storing nothing", async () => {
      // A page of any site may post text/plain with no CORS approval, or reach this machine by
      // DNS rebinding; engines and upstream servers send no Origin and no Sec-Fetch-Site.
      const before = await total();
      const pages: Record<string, string>[] = [
        {
          "content-type": "text/plain",
          origin: "http://attacker.example",
          "sec-fetch-site": "cross-site",
        },
        { origin: "http://attacker.example" },
        // Same-site, and DNS rebinding (the page's own name resolved here) past the Host check.
        { "sec-fetch-site": "same-site" },
        {
          host: "127.0.0.1:3000",
          origin: "http://127.0.0.1:3000",
          "sec-fetch-site": "same-origin",
        },
      ];
      for (const headers of pages) {
        const alert = ourAlert({ stream_id: "forged-by-a-page" });
        const res = await app.request("/api/v1/alert", post(alert, headers));
        assert.equal(res.status, 403, JSON.stringify(headers));
        const body = await res.json();
        assert.equal(body.error, "cross_site");
        assert.match(body.message, /ALERT_SIGNING_SECRET/);
      }
      // A page named by another site's name is refused before, by the Host check.
      const rebound = await app.request(
        "/api/v1/alert",
        post(ourAlert(), { host: "attacker.example:3000", origin: "http://attacker.example:3000" }),
      );
      assert.equal(rebound.status, 403);
      assert.equal(await total(), before, "nothing stored");
      const res = await app.request(
        "/api/v1/alert",
        post(ourAlert(), { "sec-fetch-site": "none" }),
      );
      assert.equal(res.status, 201);
    });

    test("POST /api/v1/alert stores a repeated alert_id once", async () => {
      const alert = ourAlert();
      for (let i = 0; i < 3; i++) {
        assert.equal((await app.request("/api/v1/alert", post(alert))).status, 201);
      }
      assert.deepEqual(await rows(alert.alert_id), { alerts: 1, features: 2 });
    });

    test("POST /api/v1/alert stores concurrent repeats of an alert exactly once", async () => {
      const alert = ourAlert({
        max_score: 0.99,
        num_anomalous_features: 300,
        anomalous_features: Array.from({ length: 300 }, (_, i) => ({
          feature_idx: i * 7,
          score: 0.9 + (i % 10) / 100,
          feature: `feature_${i * 7}`,
        })),
      });
      const before = await total();
      const answers = await Promise.all(
        Array.from({ length: 16 }, () => app.request("/api/v1/alert", post(alert))),
      );
      assert.deepEqual(
        answers.map((r) => r.status),
        answers.map(() => 201),
      );
      assert.deepEqual(await rows(alert.alert_id), { alerts: 1, features: 300 });
      assert.equal(await total(), before + 1);
    });

    test("POST /api/v1/alert answers 400 for unparsable JSON and stores nothing", async () => {
      const before = await total();
      const res = await app.request("/api/v1/alert", post('{"timestamp": '));
      assert.equal(res.status, 400);
      assert.equal((await res.json()).error, "invalid_json");
      assert.equal(await total(), before);
    });

    test("POST /api/v1/alert answers 422 naming the field that breaks the contract", async () => {
      const before = await total();
      const cases: [unknown, RegExp][] = [
        [ourAlert({ alert_id: "not-a-uuid" }), /alert_id/],
        [ourAlert({ anomalous_features: [{ feature_idx: 1, score: 1.5 }] }), /score/],
        [ourAlert({ num_anomalous_features: 1 }), /num_anomalous_features/],
        [originalAlert({ timestamp: undefined }), /timestamp/],
        [[1, 2, 3], /timestamp/],
        [42, /Object/],
        [
          originalAlert({
            num_anomalous_features: 2,
            anomalous_features: [
              { feature_idx: 5, score: 0.95 },
              { feature_idx: 5, score: 0.91 },
            ],
          }),
          /listed twice/,
        ],
        [originalAlert({ timestamp: "0000-01-01T00:00:00Z" }), /year/],
        [ourAlert({ num_anomalous_features: 2 ** 40 }), /num_anomalous_features/],
      ];
      for (const [body, message] of cases) {
        const res = await app.request("/api/v1/alert", post(body));
        assert.equal(res.status, 422, JSON.stringify(body));
        const json = await res.json();
        assert.equal(json.error, "invalid_alert");
        assert.match(json.message, message);
      }
      assert.equal(await total(), before);
    });

    test("GET /api/v1/alerts/:id answers 404 for an unknown id and 400 for a malformed one", async () => {
      const unknown = await app.request(`/api/v1/alerts/${crypto.randomUUID()}`);
      assert.equal(unknown.status, 404);
      assert.equal((await unknown.json()).error, "not_found");
      const malformed = await app.request("/api/v1/alerts/12345");
      assert.equal(malformed.status, 400);
      assert.equal((await malformed.json()).error, "invalid_request");
    });

    test("unknown routes answer 404 with the error body; a wrong method 405 with Allow", async () => {
      const res = await app.request("/api/v2/nothing");
      assert.equal(res.status, 404);
      assert.equal((await res.json()).error, "not_found");
      const before = await total();
      const wrong = await app.request("/api/v1/alert", { method: "PUT", body: "{}" });
      assert.equal(wrong.status, 405);
      assert.equal(wrong.headers.get("allow"), "POST");
      assert.equal((await wrong.json()).error, "method_not_allowed");
      assert.equal(await total(), before);
    });

    test("GET /health/ready answers 200 with the database kind", async () => {
      const res = await app.request("/health/ready");
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), {
        status: "ready",
        database: { kind: target.kind, reachable: true },
      });
    });
  });
}
