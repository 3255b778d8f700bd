import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Sql } from "postgres";
import { post } from "../alerts/_fixtures.ts";
import { createBackendApp } from "../app.ts";
import { type TestDatabase, tableReads, testTargets } from "../db/_test_databases.ts";
import { incidentAlert, type SensorEvidence } from "./_fixtures.ts";
import { findSimilarIncidents } from "./similar_incidents.ts";

const severities = (...idx: number[]): SensorEvidence[] =>
  idx.map((i, n) => ({ idx: i, severity: 50 - n * 5 }));

for (const target of testTargets()) {
  describe(`similar incidents on ${target.kind}`, () => {
    let db: TestDatabase;
    let app: ReturnType<typeof createBackendApp>;
    const ids: Record<string, string> = {};

    /** Stores an incident (opened, and resolved `durationS` later unless open). */
    async function incident(
      name: string,
      o: {
        start: string;
        sensors: SensorEvidence[];
        durationS?: number;
        model?: string | null;
        streamId?: string;
      },
    ) {
      const incidentId = crypto.randomUUID();
      ids[name] = incidentId;
      const events = o.durationS === undefined ? ["opened"] : ["opened", "resolved"];
      for (const [n, event] of events.entries()) {
        const alert: Record<string, unknown> = incidentAlert({
          incidentId,
          event: event as "opened" | "resolved",
          start: o.start,
          at: n === 0 ? 0 : o.durationS,
          sensors: o.sensors,
          streamId: o.streamId,
          model: o.model ? { name: o.model, version: "1.0.0" } : undefined,
        });
        if (o.model === null) delete alert.model_name;
        const res = await app.request("/api/v1/alert", post(alert));
        assert.equal(res.status, 201, await res.text());
      }
    }
    const similar = async (name: string, query = "") => {
      const res = await app.request(`/api/v1/incidents/${ids[name]}/similar${query}`);
      assert.equal(res.status, 200, await res.clone().text());
      return res.json();
    };
    const names = (body: { similar: { incident_id: string }[] }) =>
      body.similar.map((s) => Object.keys(ids).find((k) => ids[k] === s.incident_id));

    before(async () => {
      db = await target.open();
      app = createBackendApp({
        database: db,
        clock: { now: () => Date.parse("2026-11-25T00:00Z") },
      });
      // The incident asked about: sensors 1..6, strongest first (only 1..5 stand for it).
      await incident("target", {
        start: "2026-11-24T12:00:00Z",
        sensors: severities(1, 2, 3, 4, 5, 6),
        durationS: 60,
      });
      await incident("twoShared", {
        start: "2026-11-24T09:00:00Z",
        sensors: severities(1, 2, 9),
        durationS: 12,
      });
      // Flags sensor 1, but only as its sixth strongest: not among the ones it is compared by.
      await incident("weakOnly", {
        start: "2026-11-24T10:00:00Z",
        sensors: [...severities(20, 21, 22, 23, 24), { idx: 1, severity: 1 }],
        durationS: 5,
      });
      await incident("oneSharedOpen", { start: "2026-11-24T11:00:00Z", sensors: severities(5) });
      await incident("otherModel", {
        start: "2026-11-24T11:30:00Z",
        sensors: severities(1, 2),
        durationS: 5,
        model: "boiler",
      });
      await incident("later", {
        start: "2026-11-24T13:00:00Z",
        sensors: severities(1, 2, 3),
        durationS: 5,
      });
      await incident("disjoint", {
        start: "2026-11-24T08:00:00Z",
        sensors: severities(40, 41),
        durationS: 5,
      });
      // Without a model name: compared within their stream only.
      await incident("unnamed", {
        start: "2026-11-24T12:00:00Z",
        sensors: severities(7),
        model: null,
        streamId: "line-a",
      });
      await incident("unnamedSameStream", {
        start: "2026-11-24T07:00:00Z",
        sensors: severities(7),
        model: null,
        streamId: "line-a",
      });
      await incident("unnamedOtherStream", {
        start: "2026-11-24T07:30:00Z",
        sensors: severities(7),
        model: null,
        streamId: "line-b",
      });
      await incident("namedSameStream", {
        start: "2026-11-24T06:00:00Z",
        sensors: severities(7),
        streamId: "line-a",
      });
    });
    after(() => db.dispose());

    test("similar incidents are earlier ones of the same model sharing a strongest sensor, newest first", async () => {
      const body = await similar("target");
      assert.equal(body.incident_id, ids.target);
      assert.equal(body.model_name, "featurewise_ocsvm");
      assert.deepEqual(
        body.sensors.map((s: { feature_idx: number }) => s.feature_idx),
        [1, 2, 3, 4, 5],
      );
      assert.deepEqual(names(body), ["oneSharedOpen", "twoShared"]);
      const [open, resolved] = body.similar;
      assert.equal(open.state, "open");
      assert.equal(open.duration_ms, null);
      assert.deepEqual(open.shared, [{ feature_idx: 5, feature: "feature_5" }]);
      assert.equal(open.overlap, 1 / 5);
      assert.equal(resolved.state, "resolved");
      assert.equal(resolved.started_at, "2026-11-24T09:00:00.000Z");
      assert.equal(resolved.resolved_at, "2026-11-24T09:00:12.000Z");
      assert.equal(resolved.duration_ms, 12_000);
      assert.equal(resolved.kind, "process");
      assert.equal(resolved.max_severity, 50);
      assert.deepEqual(
        resolved.shared.map((s: { feature_idx: number }) => s.feature_idx),
        [1, 2],
      );
      assert.equal(resolved.overlap, 2 / 6);
      assert.equal(resolved.verdict, null, "no verdict yet");
    });

    test("similar incidents carry their current verdict and its note once one is given", async () => {
      for (const [verdict, note] of [
        ["true_positive", "first look"],
        ["maintenance", 'valve <b>"V-12"</b> swapped'],
      ]) {
        const res = await app.request(
          `/api/v1/incidents/${ids.twoShared}/verdict`,
          post({ verdict, note, cause: "planned work", by: "Ana" }),
        );
        assert.ok(res.status === 201 || res.status === 200, await res.text());
      }
      const [, withVerdict] = (await similar("target")).similar;
      assert.equal(withVerdict.incident_id, ids.twoShared);
      assert.equal(withVerdict.verdict.verdict, "maintenance");
      assert.equal(withVerdict.verdict.note, 'valve <b>"V-12"</b> swapped');
      assert.equal(withVerdict.verdict.cause, "planned work");
      assert.equal(withVerdict.verdict.by, "Ana");
    });

    test("similar incidents honour min_shared and limit", async () => {
      assert.deepEqual(names(await similar("target", "?min_shared=2")), ["twoShared"]);
      assert.deepEqual(names(await similar("target", "?min_shared=3")), []);
      assert.deepEqual(names(await similar("target", "?limit=1")), ["oneSharedOpen"]);
      // From the later incident, the target itself is an earlier similar one.
      assert.deepEqual(names(await similar("later", "?limit=1")), ["target"]);
    });

    test("incidents without a model name are compared within their stream", async () => {
      assert.deepEqual(names(await similar("unnamed")), ["unnamedSameStream"]);
    });

    test("similar incidents answer 404 for an unknown incident and 400 for bad input", async () => {
      const unknown = await app.request(`/api/v1/incidents/${crypto.randomUUID()}/similar`);
      assert.equal(unknown.status, 404);
      assert.equal((await unknown.json()).error, "not_found");
      for (const [path, name] of [
        ["/api/v1/incidents/not-a-uuid/similar", "id"],
        [`/api/v1/incidents/${ids.target}/similar?limit=0`, "limit"],
        [`/api/v1/incidents/${ids.target}/similar?limit=abc`, "limit"],
        [`/api/v1/incidents/${ids.target}/similar?min_shared=6`, "min_shared"],
      ]) {
        const res = await app.request(path);
        assert.equal(res.status, 400, path);
        const body = await res.json();
        assert.equal(body.error, "invalid_request");
        assert.match(body.message, new RegExp(`'${name}'`));
      }
    });
  });

  describe(`similar incidents' candidates on ${target.kind}`, () => {
    let db: TestDatabase;
    let app: ReturnType<typeof createBackendApp>;
    const T = "2026-11-24T12:00:00.000Z";
    const hoursBefore = (h: number) => new Date(Date.parse(T) - h * 3_600_000).toISOString();
    let targetId: string;
    /** Six earlier incidents sharing sensor 1, newest first. */
    const earlier: string[] = [];

    async function incident(start: string, sensors: SensorEvidence[]) {
      const incidentId = crypto.randomUUID();
      const alert = incidentAlert({ incidentId, event: "opened", start, sensors });
      assert.equal((await app.request("/api/v1/alert", post(alert))).status, 201);
      return incidentId;
    }

    before(async () => {
      db = await target.open();
      app = createBackendApp({ database: db, clock: { now: () => Date.parse(T) } });
      targetId = await incident(T, severities(1, 2, 3, 4, 5));
      for (let h = 1; h <= 6; h++) earlier.push(await incident(hoursBefore(h), severities(1, 9)));
      // A year before them, 3,000 more that flagged all five of the target's strongest sensors
      // (straight into the tables, for volume): what a sensor flagged in most incidents leaves.
      await db.sql`
        INSERT INTO incident (incident_id, stream_id, started_at, last_alert_at, max_score,
          model_name, model_version, last_alert_id, opened_model_name, opened_model_version,
          first_alert_at, first_alert_id)
        SELECT gen_random_uuid(), 'default', t, t, 0.99, 'featurewise_ocsvm', '2.2.0',
          gen_random_uuid(), 'featurewise_ocsvm', '2.2.0', t, gen_random_uuid()
        FROM generate_series(1, 3000) g,
          LATERAL (SELECT '2025-11-01T00:00:00Z'::timestamptz + g * interval '1 hour' AS t) x`;
      await db.sql`
        INSERT INTO incident_sensor (incident_id, feature_idx, feature, severity, score, peak_at,
          peak_alert_id, started_at)
        SELECT i.incident_id, f, 'feature_' || f, 10 - f, 0.95, i.started_at, gen_random_uuid(),
          i.started_at
        FROM incident i, generate_series(1, 5) f WHERE i.started_at < '2026-01-01'`;
      await db.sql`ANALYZE`;
    });
    after(() => db.dispose());

    test("similar incidents look at the newest candidates only, however many share a sensor", async () => {
      const found = async (candidates?: number) =>
        (await findSimilarIncidents(db.sql, targetId, {
          limit: 10,
          minShared: 1,
          candidates,
        }))!.similar.map((s) => s.incident_id);
      assert.deepEqual(await found(4), earlier.slice(0, 4), "the 4 newest, none older");
      assert.deepEqual(await found(6), earlier);
      // Past the six: the bulk incidents (sharing all five sensors) come next, newest first.
      const ten = await found(20);
      assert.deepEqual(ten.slice(0, 6), earlier);
      assert.equal(ten.length, 10);
    });

    test("similar incidents read a bounded number of sensor rows, not every incident's", async () => {
      const candidates = 20;
      const { similar, before, after } = await db.sql.begin(async (tx) => {
        const before = await tableReads(tx, "incident_sensor");
        // On the transaction's connection, which the counters are of (a pool's own `Sql` type).
        const similar = await findSimilarIncidents(tx as unknown as Sql, targetId, {
          limit: 10,
          minShared: 5,
          candidates,
        });
        return { similar, before, after: await tableReads(tx, "incident_sensor") };
      });
      // Sharing all five: only bulk incidents, the newest 14 of which are among the candidates.
      assert.equal(similar!.similar.length, 10);
      assert.equal(after.seqScans - before.seqScans, 0, "no sequential scan of incident_sensor");
      // Each sensor walked `candidates` rows at most, each candidate's strongest five read, and
      // the target's own: about 5 * 20 + 20 * 5, never the 15,000 rows the bulk left.
      const read = after.indexRows + after.seqRows - before.indexRows - before.seqRows;
      assert.ok(read <= 3 * 5 * candidates, `read ${read} rows`);
    });
  });
}
