import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { post } from "../alerts/_fixtures.ts";
import { createBackendApp } from "../app.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";
import { incidentAlert, type SensorEvidence } from "./_fixtures.ts";

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
}
