// Alert intake over real HTTP on PGlite/PostgreSQL: dates that do not exist, max_score below a listed score, Content-Encoding and the `model` alias refused or read, never stored wrong.
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { serve } from "@hono/node-server";
import { createBackendApp } from "../app.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";
import { originalAlert, ourAlert } from "./_fixtures.ts";

/** `text` gzip-compressed, as a client sending `Content-Encoding: gzip` would. */
async function gzip(text: string): Promise<ArrayBuffer> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return await new Response(stream).arrayBuffer();
}

for (const target of testTargets()) {
  describe(`alert intake on ${target.kind}`, () => {
    let db: TestDatabase;
    let server: ReturnType<typeof serve>;
    let base: string;
    const total = async () => (await db.sql`SELECT count(*)::int AS n FROM alert`)[0].n as number;
    const send = (body: unknown, headers: Record<string, string> = {}) =>
      fetch(`${base}/alert`, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: typeof body === "string" || body instanceof ArrayBuffer ? body : JSON.stringify(body),
      });
    const stored = async (alertId: string) =>
      (await (await fetch(`${base}/alerts/${alertId}`)).json()) as Record<string, unknown>;
    /** Sends each body and expects `422 invalid_alert` with `message`, storing nothing. */
    const refused = async (cases: [unknown, RegExp][]) => {
      const before = await total();
      for (const [body, message] of cases) {
        const res = await send(body);
        const answer = await res.json();
        assert.equal(res.status, 422, `${JSON.stringify(body)} → ${JSON.stringify(answer)}`);
        assert.equal(answer.error, "invalid_alert");
        assert.match(answer.message, message);
      }
      assert.equal(await total(), before, "nothing stored");
    };

    /** An incident's `opened` alert as our engine sends it. */
    const incidentAlert = (overrides: Record<string, unknown> = {}) =>
      ourAlert({
        incident_id: crypto.randomUUID(),
        event: "opened",
        incident_started_at: "2026-11-24T08:59:59.000Z",
        max_severity: 4,
        ...overrides,
      });

    before(async () => {
      db = await target.open();
      const app = createBackendApp({ database: db });
      server = await new Promise<ReturnType<typeof serve>>((resolve) => {
        const s = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, () => resolve(s));
      });
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1`;
    });
    after(async () => {
      await new Promise((resolve) => server?.close(resolve));
      await db?.dispose();
    });

    test("POST /api/v1/alert refuses a day that does not exist with 422 naming the field, never rolling it over", async () => {
      await refused([
        [originalAlert({ timestamp: "2026-02-30T00:00:00Z" }), /^timestamp: .*exists/],
        // Without a zone (read as UTC), as the original design's engine writes it.
        [originalAlert({ timestamp: "2026-11-31T10:00:00" }), /^timestamp: .*exists/],
        [originalAlert({ timestamp: "2026-11-31T10:00:00.123456" }), /^timestamp: /],
        [originalAlert({ timestamp: "2026-02-29T12:00:00.000+01:00" }), /^timestamp: /],
        [originalAlert({ timestamp: "1900-02-29T00:00:00Z" }), /^timestamp: /],
        [originalAlert({ timestamp: "2026-04-31T00:00:00Z" }), /^timestamp: /],
        [originalAlert({ timestamp: "2026-11-24T24:00:00Z" }), /^timestamp: /],
        [originalAlert({ timestamp: "2026-11-24T10:60:00Z" }), /^timestamp: /],
        [ourAlert({ frame_timestamp: "2026-02-30T00:00:00.000Z" }), /^frame_timestamp: .*exists/],
        [ourAlert({ frame_timestamp: "2026-06-31T08:00:00Z" }), /^frame_timestamp: /],
        [
          incidentAlert({ incident_started_at: "2026-02-30T00:00:00.000Z" }),
          /^incident_started_at: /,
        ],
        [
          ourAlert({
            num_anomalous_features: 1,
            anomalous_features: [
              {
                feature_idx: 17,
                score: 0.97,
                history: {
                  start: "2026-09-31T08:00:00.000Z",
                  step_ms: 1000,
                  values: [1],
                  onset: 0,
                },
              },
            ],
          }),
          /^anomalous_features\.0\.history\.start: /,
        ],
      ]);
    });

    test("POST /api/v1/alert still takes every real day, leap days and zone-less times read as UTC", async () => {
      for (const [sent, read] of [
        ["2024-02-29T00:00:00Z", "2024-02-29T00:00:00.000Z"],
        ["2000-02-29T23:59:59.999Z", "2000-02-29T23:59:59.999Z"],
        ["2026-11-30T10:00:00", "2026-11-30T10:00:00.000Z"],
        ["2026-12-31T23:59:59.123456", "2026-12-31T23:59:59.123Z"],
        ["2026-03-01T00:30:00+01:00", "2026-02-28T23:30:00.000Z"],
        ["2026-04-30T10:00:00.5-02:00", "2026-04-30T12:00:00.500Z"],
      ]) {
        const res = await send(originalAlert({ timestamp: sent }));
        assert.equal(res.status, 201, `${sent}: ${await res.clone().text()}`);
        const { alert_id } = await res.json();
        assert.equal((await stored(alert_id)).timestamp, read, sent);
      }
      const alert = incidentAlert({
        frame_timestamp: "2024-02-29T10:00:00.000Z",
        incident_started_at: "2024-02-29T09:00:00.000Z",
      });
      assert.equal((await send(alert)).status, 201);
      assert.equal((await stored(alert.alert_id)).frame_timestamp, "2024-02-29T10:00:00.000Z");
    });

    test("POST /api/v1/alert refuses a max_score below a listed score, and GET /alerts?min_score= finds what it takes", async () => {
      const features = [
        { feature_idx: 6, score: 0.9 },
        { feature_idx: 7, score: 0.4 },
      ];
      await refused([
        [
          ourAlert({
            stream_id: "max-score",
            num_anomalous_features: 2,
            anomalous_features: features,
            max_score: 0.1,
          }),
          /^max_score: .*feature_idx 6 scores 0\.9/,
        ],
        [originalAlert({ max_score: 0.5 }), /^max_score: /],
      ]);
      // Equal to the largest listed score, or above it (a list cut to its top sensors).
      const equal = ourAlert({
        stream_id: "max-score",
        num_anomalous_features: 2,
        anomalous_features: features,
        max_score: 0.9,
      });
      const cut = ourAlert({
        stream_id: "max-score",
        num_anomalous_features: 40,
        anomalous_features: [features[1]],
        max_score: 0.99,
      });
      for (const alert of [equal, cut]) assert.equal((await send(alert)).status, 201);
      const listed = async (query: string) => {
        const page = await (await fetch(`${base}/alerts?stream_id=max-score&${query}`)).json();
        return (page.alerts as { alert_id: string }[]).map((a) => a.alert_id).sort();
      };
      assert.deepEqual(await listed("min_score=0.5"), [equal.alert_id, cut.alert_id].sort());
      assert.deepEqual(await listed("feature_idx=6&min_score=0.5"), [equal.alert_id]);
    });

    test("POST /api/v1/alert answers 415 unsupported_encoding for any Content-Encoding but identity, before reading the body", async () => {
      const before = await total();
      const body = JSON.stringify(originalAlert({ timestamp: "2026-11-24T09:07:00.000Z" }));
      const cases: [ArrayBuffer | string, string][] = [
        [await gzip(body), "gzip"],
        [body, "br"],
        [body, "deflate"],
        [body, "identity, gzip"],
        [body, "x-custom"],
      ];
      for (const [sent, coding] of cases) {
        const res = await send(sent, { "content-encoding": coding });
        const answer = await res.json();
        assert.equal(res.status, 415, `${coding}: ${JSON.stringify(answer)}`);
        assert.equal(answer.error, "unsupported_encoding");
        // Nothing of the body in the answer (a gzip body's bytes used to come back as text).
        assert.equal(
          answer.message,
          `Content-Encoding ${JSON.stringify(coding)} is not supported: send the alert uncompressed (identity)`,
        );
        assert.equal(res.headers.get("accept-encoding"), "identity");
      }
      assert.equal(await total(), before, "nothing stored");
      const codings: Record<string, string>[] = [
        {},
        { "content-encoding": "identity" },
        { "content-encoding": "Identity" },
      ];
      for (const headers of codings) {
        const res = await send(ourAlert(), headers);
        assert.equal(res.status, 201, JSON.stringify(headers));
      }
    });

    test("POST /api/v1/alert reads `model` as model_name, refusing the two when they differ", async () => {
      const withModel = ourAlert({
        model_name: undefined,
        model: "featurewise_ocsvm",
        model_version: "2.3.0",
      });
      const both = ourAlert({ model_name: "pca_v2", model: "pca_v2" });
      for (const alert of [withModel, both]) {
        const res = await send(alert);
        assert.equal(res.status, 201, await res.clone().text());
      }
      const read = await stored(withModel.alert_id);
      assert.equal(read.model_name, "featurewise_ocsvm");
      assert.equal(read.model_version, "2.3.0");
      assert.equal("model" in read, false, "model_name is what is answered");
      assert.equal((await stored(both.alert_id)).model_name, "pca_v2");
      await refused([
        [
          ourAlert({ model_name: "featurewise_ocsvm", model: "pca_v2" }),
          /^model: pca_v2 differs from model_name/,
        ],
        [ourAlert({ model_name: undefined, model: "no spaces" }), /^model: /],
        [ourAlert({ model_name: undefined, model: 7 }), /^model: /],
        [ourAlert({ model: "featurewise_ocsvm", model_name: null }), /^model: /],
      ]);
    });
  });
}
