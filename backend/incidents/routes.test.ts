import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { originalAlert, post } from "../alerts/_fixtures.ts";
import { createBackendApp } from "../app.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";
import { incidentAlert, lifecycle } from "./_fixtures.ts";

const TOKEN = "console-token-for-tests";

// The parts of an incident that must not depend on the order its alerts arrived in.
function comparable(detail: Record<string, unknown>) {
  const {
    incident_id: _i,
    timeline,
    sensors,
    ...rest
  } = detail as {
    incident_id: string;
    timeline: Record<string, unknown>[];
    sensors: Record<string, unknown>[];
  };
  return {
    ...rest,
    sensors,
    timeline: timeline.map(({ alert_id: _a, ...e }) => e),
  };
}

for (const target of testTargets()) {
  describe(`incident API on ${target.kind}`, () => {
    let db: TestDatabase;
    let app: ReturnType<typeof createBackendApp>;
    let guarded: ReturnType<typeof createBackendApp>;
    const store = async (alert: unknown) => {
      const res = await app.request("/api/v1/alert", post(alert));
      assert.equal(res.status, 201, await res.clone().text());
    };
    const get = async (id: string) => (await app.request(`/api/v1/incidents/${id}`)).json();
    const counts = async () => {
      const [r] = await db.sql`
        SELECT (SELECT count(*)::int FROM incident) AS incidents,
          (SELECT count(*)::int FROM incident_ack) AS acks,
          (SELECT count(*)::int FROM incident_verdict) AS verdicts,
          (SELECT count(*)::int FROM incident_event) AS events`;
      return { ...r };
    };

    before(async () => {
      db = await target.open();
      app = createBackendApp({
        database: db,
        clock: { now: () => Date.parse("2026-11-24T10:00:00Z") },
      });
      guarded = createBackendApp({ database: db, consoleToken: TOKEN });
    });
    after(() => db.dispose());

    test("an incident's alerts build one incident with its timeline and peak evidence", async () => {
      const id = crypto.randomUUID();
      for (const alert of lifecycle(id)) await store(alert);
      const incident = await get(id);
      assert.equal(incident.state, "resolved");
      assert.equal(incident.started_at, "2026-11-24T09:00:00.000Z");
      assert.equal(incident.resolved_at, "2026-11-24T09:00:12.000Z");
      assert.equal(incident.alerts, 3);
      assert.equal(incident.num_sensors, 2);
      assert.equal(incident.max_severity, 30);
      assert.deepEqual(
        incident.timeline.map((e: { event: string }) => e.event),
        ["opened", "updated", "resolved"],
      );
      const [first, second] = incident.sensors;
      assert.equal(first.feature_idx, 4242, "the strongest sensor is listed first");
      assert.equal(first.feature, "feature_4242");
      assert.equal(first.severity, 30);
      assert.equal(first.value, 70);
      assert.deepEqual(first.window, [10, 11, 10.5, 12, 70]);
      assert.deepEqual(first.typical, { low: 8, high: 13 });
      assert.equal(first.statistic, "level");
      assert.equal(first.peak_at, "2026-11-24T09:00:03.000Z", "a tie keeps the earlier peak");
      assert.equal(second.feature_idx, 17);
    });

    test("a stored alert keeps its evidence and incident fields", async () => {
      const alert = incidentAlert({
        incidentId: crypto.randomUUID(),
        event: "opened",
        sensors: [{ idx: 9, severity: 7.5, value: -3.25 }],
      });
      await store(alert);
      const stored = await (await app.request(`/api/v1/alerts/${alert.alert_id}`)).json();
      assert.deepEqual(stored.anomalous_features, alert.anomalous_features);
      assert.equal(stored.incident_id, alert.incident_id);
      assert.equal(stored.event, "opened");
      assert.equal(stored.incident_started_at, alert.incident_started_at);
      assert.equal(stored.max_severity, 7.5);
    });

    test("an incident converges whatever order and however often its alerts arrive", async () => {
      const reference = crypto.randomUUID();
      for (const alert of lifecycle(reference)) await store(alert);
      const expected = comparable(await get(reference));
      const orders = [
        [2, 1, 0],
        [1, 2, 0],
        [2, 0, 1],
      ];
      for (const order of orders) {
        const id = crypto.randomUUID();
        const alerts = lifecycle(id);
        // Each alert delivered three times at once, as retries with concurrency do.
        for (const i of order) {
          const answers = await Promise.all(
            [0, 1, 2].map(() => app.request("/api/v1/alert", post(alerts[i]))),
          );
          assert.deepEqual(
            answers.map((r) => r.status),
            [201, 201, 201],
          );
        }
        assert.deepEqual(comparable(await get(id)), expected, `order ${order}`);
      }
    });

    test("an incident keeps the model of its latest alert and of the one that opened it, in any arrival order", async () => {
      // A version switch in the middle of the incident; the last two alerts share a frame time,
      // so the alert_id breaks the tie.
      const switched = (id: string) => {
        const [opened, updated, resolved] = lifecycle(id);
        const next = { name: "boiler.v2", version: "2.3.0+abc" };
        return [
          opened,
          {
            ...updated,
            alert_id: `0${crypto.randomUUID().slice(1)}`,
            model_name: next.name,
            model_version: next.version,
          },
          {
            ...resolved,
            frame_timestamp: updated.frame_timestamp,
            timestamp: updated.timestamp,
            alert_id: `f${crypto.randomUUID().slice(1)}`,
            model_name: next.name,
            model_version: "2.3.1",
          },
        ];
      };
      const ids: string[] = [];
      for (const order of [
        [0, 1, 2],
        [2, 1, 0],
        [1, 2, 0],
        [2, 0, 1],
      ]) {
        const id = crypto.randomUUID();
        ids.push(id);
        const alerts = switched(id);
        for (const i of order) {
          const answers = await Promise.all(
            [0, 1, 2].map(() => app.request("/api/v1/alert", post(alerts[i]))),
          );
          assert.deepEqual(
            answers.map((r) => r.status),
            [201, 201, 201],
          );
        }
        const incident = await get(id);
        const models = {
          latest: `${incident.model_name}@${incident.model_version}`,
          opened: `${incident.opened_model_name}@${incident.opened_model_version}`,
        };
        assert.deepEqual(models, { latest: "boiler.v2@2.3.1", opened: "featurewise_ocsvm@2.2.0" });
        assert.deepEqual(
          incident.timeline.map(
            (e: { model_name: string; model_version: string }) =>
              `${e.model_name}@${e.model_version}`,
          ),
          ["featurewise_ocsvm@2.2.0", "boiler.v2@2.3.0+abc", "boiler.v2@2.3.1"],
          `order ${order}`,
        );
      }
      const listed = await (await app.request("/api/v1/incidents?limit=500")).json();
      for (const id of ids) {
        const summary = listed.incidents.find((i: { incident_id: string }) => i.incident_id === id);
        assert.equal(summary.model_name, "boiler.v2");
        assert.equal(summary.model_version, "2.3.1");
        assert.equal(summary.opened_model_version, "2.2.0");
      }
      const [row] = await db.sql`
        SELECT model_name FROM alert WHERE incident_id = ${ids[0]} AND event = 'opened'`;
      assert.equal(row.model_name, "featurewise_ocsvm");
    });

    test("an incident counts every sensor its alerts counted, beyond the listed ones", async () => {
      const id = crypto.randomUUID();
      const capped = {
        ...incidentAlert({
          incidentId: id,
          event: "opened",
          sensors: [
            { idx: 1, severity: 9 },
            { idx: 2, severity: 8 },
          ],
        }),
        num_anomalous_features: 24_000,
      };
      await store(capped);
      const incident = await get(id);
      assert.equal(incident.num_sensors, 24_000);
      assert.equal(incident.sensors.length, 2);
    });

    test("a late update never reopens a resolved incident", async () => {
      const id = crypto.randomUUID();
      const [opened, updated, resolved] = lifecycle(id);
      await store(opened);
      await store(resolved);
      await store(updated);
      const incident = await get(id);
      assert.equal(incident.state, "resolved");
      assert.equal(incident.resolved_at, "2026-11-24T09:00:12.000Z");
    });

    test("an alert from the original design's engine is stored and listed as an alert only", async () => {
      const before = await counts();
      const body = JSON.stringify(originalAlert({ timestamp: "2026-11-25T09:00:00.000Z" }));
      const res = await app.request("/api/v1/alert", post(body));
      assert.equal(res.status, 201);
      const { alert_id } = await res.json();
      const stored = await (await app.request(`/api/v1/alerts/${alert_id}`)).json();
      assert.deepEqual(stored.anomalous_features, [{ feature_idx: 5, score: 0.95 }]);
      assert.equal(stored.incident_id, undefined);
      assert.deepEqual(await counts(), before);
    });

    test("GET /api/v1/incidents filters by state, stream, sensor and time, newest first", async () => {
      const start = (h: number) => `2026-12-0${h}T00:00:00.000Z`;
      const a = crypto.randomUUID();
      const b = crypto.randomUUID();
      const c = crypto.randomUUID();
      for (const x of lifecycle(a, start(1), "line-a")) await store(x);
      await store(lifecycle(b, start(2), "line-b")[0]);
      await store(
        incidentAlert({
          incidentId: c,
          event: "opened",
          start: start(3),
          streamId: "line-b",
          sensors: [{ idx: 77, severity: 3 }],
        }),
      );
      const ids = async (query: string) => {
        const res = await app.request(`/api/v1/incidents?from=${start(1)}&${query}`);
        assert.equal(res.status, 200);
        return (await res.json()).incidents.map((i: { incident_id: string }) => i.incident_id);
      };
      assert.deepEqual(await ids(""), [c, b, a]);
      assert.deepEqual(await ids("state=open"), [c, b]);
      assert.deepEqual(await ids("state=resolved"), [a]);
      assert.deepEqual(await ids("stream_id=line-a"), [a]);
      assert.deepEqual(await ids("feature_idx=4242"), [b, a]);
      assert.deepEqual(await ids(`to=${start(3)}`), [b, a]);
      // A time without a zone is UTC, whatever the server's zone; a date alone its midnight.
      const zone = process.env.TZ;
      process.env.TZ = "America/New_York";
      try {
        assert.deepEqual(await ids("to=2026-12-03T00:00:00"), [b, a]);
        assert.deepEqual(await ids("to=2026-12-03T00:00:00.001"), [c, b, a]);
        assert.deepEqual(await ids("to=2026-12-03"), [b, a]);
      } finally {
        if (zone === undefined) delete process.env.TZ;
        else process.env.TZ = zone;
      }
      const [listed] = (
        await (await app.request(`/api/v1/incidents?stream_id=line-a&sensors=1`)).json()
      ).incidents;
      assert.equal(listed.sensors.length, 1);
      assert.equal(listed.num_sensors, 2);
      assert.equal(listed.acknowledged, null);
      // Paging by cursor visits each incident once.
      const seen: string[] = [];
      let cursor = "";
      for (;;) {
        const page = await (
          await app.request(`/api/v1/incidents?from=${start(1)}&limit=1${cursor}`)
        ).json();
        seen.push(...page.incidents.map((i: { incident_id: string }) => i.incident_id));
        if (!page.next_cursor) break;
        cursor = `&cursor=${page.next_cursor}`;
      }
      assert.deepEqual(seen, [c, b, a]);
    });

    test("GET /api/v1/incidents answers 400 for bad filters", async () => {
      for (const query of [
        "state=closed",
        "limit=0",
        "from=yesterday",
        // Loose text `new Date` would take: only epoch milliseconds or strict ISO 8601.
        "from=-1",
        "from=06%2F12%2F2026",
        "from=foo%201",
        "to=2026-12-06%2003%3A30",
        "cursor=xyz",
        "feature_idx=-1",
        // Times a timestamp column cannot hold, and a cursor carrying one.
        "from=999999999999999",
        "to=%2B020000-01-01T00:00:00Z",
        `cursor=${btoa(JSON.stringify(["+275760-01-01T00:00:00.000Z", crypto.randomUUID()]))}`,
      ]) {
        const res = await app.request(`/api/v1/incidents?${query}`);
        assert.equal(res.status, 400, query);
        assert.equal((await res.json()).error, "invalid_request");
      }
      const bad = await app.request("/api/v1/incidents/not-a-uuid");
      assert.equal(bad.status, 400);
      const missing = await app.request(`/api/v1/incidents/${crypto.randomUUID()}`);
      assert.equal(missing.status, 404);
      assert.equal((await missing.json()).error, "not_found");
    });

    test("POST /api/v1/incidents/:id/ack records the first acknowledgement and answers it again", async () => {
      const id = crypto.randomUUID();
      await store(lifecycle(id)[0]);
      const ack = (body: unknown) => app.request(`/api/v1/incidents/${id}/ack`, post(body));
      const first = await ack({ by: "Ana", note: "valve 3 checked" });
      assert.equal(first.status, 201);
      const answer = await first.json();
      assert.deepEqual(answer.acknowledged, {
        by: "Ana",
        note: "valve 3 checked",
        at: "2026-11-24T10:00:00.000Z",
      });
      const second = await ack({ by: "Bo" });
      assert.equal(second.status, 200);
      assert.deepEqual((await second.json()).acknowledged, answer.acknowledged);
      const incident = await get(id);
      assert.deepEqual(incident.acknowledged, answer.acknowledged);
      assert.equal(incident.timeline.at(-1).event, "acknowledged");
      assert.equal(incident.timeline.at(-1).by, "Ana");
      const listed = await (await app.request("/api/v1/incidents?acknowledged=true")).json();
      assert.ok(listed.incidents.some((i: { incident_id: string }) => i.incident_id === id));
    });

    test("POST /api/v1/incidents/:id/ack rejects bad input with a code and changes nothing", async () => {
      const id = crypto.randomUUID();
      await store(lifecycle(id)[0]);
      const before = await counts();
      const cases: [string, string, number, string][] = [
        [id, "{", 400, "invalid_json"],
        [id, "{}", 400, "invalid_request"],
        [id, JSON.stringify({ by: "  " }), 400, "invalid_request"],
        [id, JSON.stringify({ by: "x".repeat(201) }), 400, "invalid_request"],
        [id, JSON.stringify({ by: "Ana", note: 5 }), 400, "invalid_request"],
        [id, JSON.stringify({ by: "Ana", extra: 1 }), 400, "invalid_request"],
        // Text PostgreSQL cannot store: a NUL, an unpaired surrogate.
        [id, JSON.stringify({ by: "A\0na" }), 400, "invalid_request"],
        [id, JSON.stringify({ by: "Ana", note: "valve \ud800 3" }), 400, "invalid_request"],
        [
          id,
          JSON.stringify({ by: "Ana", note: "x".repeat(2 * 1024 * 1024) }),
          413,
          "payload_too_large",
        ],
        ["nope", JSON.stringify({ by: "Ana" }), 400, "invalid_request"],
        [crypto.randomUUID(), JSON.stringify({ by: "Ana" }), 404, "not_found"],
      ];
      for (const [target, body, status, code] of cases) {
        const res = await app.request(`/api/v1/incidents/${target}/ack`, post(body));
        assert.equal(res.status, status, body);
        const json = await res.json();
        assert.equal(json.error, code, body);
        assert.equal(typeof json.message, "string");
      }
      assert.deepEqual(await counts(), before);
      // One sentence a person can act on, naming the field.
      const said = async (body: unknown) =>
        (await (await app.request(`/api/v1/incidents/${id}/ack`, post(body))).json()).message;
      assert.equal(await said({}), "'by' is required");
      assert.equal(await said({ by: "Ana", x: 1 }), "'x' is not a field of an acknowledgement");
      assert.equal(await said([]), "the body must be a JSON object");
      assert.equal(
        await said({ by: "A\0na" }),
        "'by' must be text without NUL characters or unpaired surrogates",
      );
    });

    test("without CONSOLE_TOKEN, another site's page still cannot acknowledge", async () => {
      const id = crypto.randomUUID();
      await store(lifecycle(id)[0]);
      const url = `http://console.test/api/v1/incidents/${id}/ack`;
      const foreign: Record<string, string>[] = [
        { origin: "http://evil.test" },
        { "sec-fetch-site": "cross-site" },
      ];
      for (const headers of foreign) {
        const res = await app.request(url, post({ by: "Mallory" }, headers));
        assert.equal(res.status, 401, JSON.stringify(headers));
        assert.equal((await res.json()).error, "unauthorized");
      }
      assert.equal((await get(id)).acknowledged, null);
      const own = await app.request(
        url,
        post({ by: "Ana" }, { origin: "http://console.test", "sec-fetch-site": "same-origin" }),
      );
      assert.equal(own.status, 201);
    });

    /** Every way of asking without the console token (or from another site) is refused with 401. */
    async function assertRefusedWithoutToken(url: string, body: unknown): Promise<void> {
      const refused: Record<string, string>[] = [
        {},
        { authorization: "Bearer wrong-token" },
        { cookie: "console_token=wrong" },
        { cookie: `console_token=${TOKEN}`, origin: "http://evil.test" },
        { cookie: `console_token=${TOKEN}`, "sec-fetch-site": "cross-site" },
      ];
      for (const headers of refused) {
        const res = await guarded.request(url, post(body, headers));
        assert.equal(res.status, 401, JSON.stringify(headers));
        assert.equal((await res.json()).error, "unauthorized");
      }
    }

    test("with CONSOLE_TOKEN, acknowledging needs the bearer token or a same-site cookie", async () => {
      const id = crypto.randomUUID();
      await store(lifecycle(id)[0]);
      const url = `http://console.test/api/v1/incidents/${id}/ack`;
      const body = { by: "Ana" };
      await assertRefusedWithoutToken(url, body);
      assert.equal((await get(id)).acknowledged, null);
      const viaCookie = await guarded.request(
        url,
        post(body, {
          cookie: `console_token=${TOKEN}`,
          origin: "http://console.test",
          "sec-fetch-site": "same-origin",
        }),
      );
      assert.equal(viaCookie.status, 201);
      const viaBearer = await guarded.request(
        url,
        post(body, { authorization: `Bearer ${TOKEN}` }),
      );
      assert.equal(viaBearer.status, 200);
    });

    test("POST /api/v1/incidents/:id/verdict records the first verdict and keeps the history of changes", async () => {
      const id = crypto.randomUUID();
      await store(lifecycle(id)[0]);
      assert.equal((await get(id)).verdict, null);
      assert.deepEqual((await get(id)).verdicts, []);
      const give = (body: unknown) => app.request(`/api/v1/incidents/${id}/verdict`, post(body));
      const first = await give({ verdict: "false_positive", note: "calibration drift", by: "Ana" });
      assert.equal(first.status, 201);
      const firstVerdict = {
        verdict: "false_positive",
        cause: null,
        note: "calibration drift",
        by: "Ana",
        at: "2026-11-24T10:00:00.000Z",
      };
      assert.deepEqual(await first.json(), {
        status: "ok",
        incident_id: id,
        verdict: firstVerdict,
      });
      const change = await give({ verdict: "true_positive", cause: "valve 3 stuck", by: "Bo" });
      assert.equal(change.status, 200);
      const changed = {
        verdict: "true_positive",
        cause: "valve 3 stuck",
        note: null,
        by: "Bo",
        at: "2026-11-24T10:00:00.000Z",
      };
      assert.deepEqual((await change.json()).verdict, changed);
      const incident = await get(id);
      assert.deepEqual(incident.verdict, changed);
      assert.deepEqual(incident.verdicts, [firstVerdict, changed]);
      assert.deepEqual(
        incident.timeline.map((e: { event: string }) => e.event),
        ["opened"],
        "the timeline is unchanged",
      );
      const listed = await (await app.request("/api/v1/incidents?verdict=true_positive")).json();
      const summary = listed.incidents.find((i: { incident_id: string }) => i.incident_id === id);
      assert.deepEqual(summary.verdict, changed);
      assert.equal(summary.verdicts, undefined);
    });

    test("POST /api/v1/incidents/:id/verdict rejects bad input with a code and stores nothing", async () => {
      const id = crypto.randomUUID();
      await store(lifecycle(id)[0]);
      const before = await counts();
      const ok = { verdict: "maintenance", by: "Ana" };
      const cases: [string, string, number, string, string?][] = [
        [id, "{", 400, "invalid_json"],
        [id, "{}", 400, "invalid_request", "verdict"],
        [id, JSON.stringify({ ...ok, verdict: "dunno" }), 400, "invalid_request", "verdict"],
        [id, JSON.stringify({ verdict: "maintenance" }), 400, "invalid_request", "by"],
        [id, JSON.stringify({ ...ok, by: " " }), 400, "invalid_request", "by"],
        [id, JSON.stringify({ ...ok, by: "x".repeat(201) }), 400, "invalid_request", "by"],
        [id, JSON.stringify({ ...ok, cause: "x".repeat(501) }), 400, "invalid_request", "cause"],
        [id, JSON.stringify({ ...ok, note: "x".repeat(2001) }), 400, "invalid_request", "note"],
        [id, JSON.stringify({ ...ok, note: 5 }), 400, "invalid_request", "note"],
        [id, JSON.stringify({ ...ok, extra: 1 }), 400, "invalid_request", "extra"],
        [id, JSON.stringify({ ...ok, note: "stuck\0" }), 400, "invalid_request", "note"],
        [id, JSON.stringify({ ...ok, cause: "\udc00" }), 400, "invalid_request", "cause"],
        [id, JSON.stringify([ok]), 400, "invalid_request"],
        ["nope", JSON.stringify(ok), 400, "invalid_request", "id"],
        [crypto.randomUUID(), JSON.stringify(ok), 404, "not_found"],
      ];
      for (const [target, body, status, code, field] of cases) {
        const res = await app.request(`/api/v1/incidents/${target}/verdict`, post(body));
        assert.equal(res.status, status, body);
        const json = await res.json();
        assert.equal(json.error, code, body);
        assert.equal(typeof json.message, "string");
        if (field) assert.match(json.message, new RegExp(`'${field}'`), body);
      }
      assert.deepEqual(await counts(), before);
      const longest = await app.request(
        `/api/v1/incidents/${id}/verdict`,
        post({ ...ok, cause: "c".repeat(500), note: "n".repeat(2000), by: "b".repeat(200) }),
      );
      assert.equal(longest.status, 201, "the limits themselves are accepted");
    });

    test("GET /api/v1/incidents filters by the current verdict, none included", async () => {
      const from = "2026-12-20T00:00:00.000Z";
      const [a, b, c] = [1, 2, 3].map(() => crypto.randomUUID());
      for (const [i, id] of [a, b, c].entries()) {
        await store(lifecycle(id, `2026-12-2${i}T00:00:00.000Z`)[0]);
      }
      const give = async (id: string, verdict: string) => {
        const res = await app.request(
          `/api/v1/incidents/${id}/verdict`,
          post({ verdict, by: "Ana" }),
        );
        assert.ok(res.ok, await res.clone().text());
      };
      await give(a, "sensor_fault");
      await give(b, "sensor_fault");
      await give(b, "maintenance");
      const ids = async (verdict: string) => {
        const res = await app.request(`/api/v1/incidents?from=${from}&verdict=${verdict}`);
        assert.equal(res.status, 200);
        return (await res.json()).incidents.map((i: { incident_id: string }) => i.incident_id);
      };
      assert.deepEqual(await ids("sensor_fault"), [a], "a superseded verdict no longer matches");
      assert.deepEqual(await ids("maintenance"), [b]);
      assert.deepEqual(await ids("none"), [c]);
      assert.deepEqual(await ids("true_positive"), []);
      assert.deepEqual(await ids("false_positive"), []);
      for (const query of ["verdict=bogus", "verdict=", "verdict=NONE"]) {
        const res = await app.request(`/api/v1/incidents?${query}`);
        assert.equal(res.status, 400, query);
        const json = await res.json();
        assert.equal(json.error, "invalid_request");
        assert.match(json.message, /'verdict'/);
      }
    });

    test("with CONSOLE_TOKEN, giving a verdict needs the bearer token or a same-site cookie", async () => {
      const id = crypto.randomUUID();
      await store(lifecycle(id)[0]);
      const url = `http://console.test/api/v1/incidents/${id}/verdict`;
      const body = { verdict: "true_positive", by: "Ana" };
      await assertRefusedWithoutToken(url, body);
      assert.deepEqual((await get(id)).verdicts, []);
      const foreign = await app.request(url, post(body, { origin: "http://evil.test" }));
      assert.equal(foreign.status, 401, "without a token, another site's page is refused too");
      const viaCookie = await guarded.request(
        url,
        post(body, {
          cookie: `console_token=${TOKEN}`,
          origin: "http://console.test",
          "sec-fetch-site": "same-origin",
        }),
      );
      assert.equal(viaCookie.status, 201);
      const viaBearer = await guarded.request(
        url,
        post({ ...body, verdict: "maintenance" }, { authorization: `Bearer ${TOKEN}` }),
      );
      assert.equal(viaBearer.status, 200);
      assert.equal((await get(id)).verdicts.length, 2);
    });

    test("GET /api/v1/incidents/heatmap gives the strongest cell per sensor and time bucket", async () => {
      // Before every other test's incidents: those still open would count from the first bucket.
      const from = "2026-11-01T00:00:00.000Z";
      const first = crypto.randomUUID();
      const second = crypto.randomUUID();
      await store(
        incidentAlert({
          incidentId: first,
          event: "opened",
          start: from,
          sensors: [
            { idx: 1, severity: 5 },
            { idx: 2, severity: 9 },
          ],
        }),
      );
      await store(
        incidentAlert({
          incidentId: second,
          event: "opened",
          start: "2026-11-01T00:50:00.000Z",
          sensors: [{ idx: 1, severity: 20 }],
        }),
      );
      const res = await app.request(
        `/api/v1/incidents/heatmap?from=${from}&to=2026-11-01T01:00:00.000Z&buckets=6&sensors=1`,
      );
      assert.equal(res.status, 200);
      const map = await res.json();
      assert.equal(map.bucket_ms, 600_000);
      assert.deepEqual(
        map.sensors.map((s: { feature_idx: number }) => s.feature_idx),
        [1],
      );
      assert.deepEqual(
        map.cells.map((c: { bucket: number; incident_id: string; severity: number }) => [
          c.bucket,
          c.incident_id,
          c.severity,
        ]),
        [
          [0, first, 5],
          [5, second, 20],
        ],
      );
      const bad = await app.request(`/api/v1/incidents/heatmap?from=${from}&to=${from}`);
      assert.equal(bad.status, 400);
    });

    test("GET /api/v1/incidents/stream sends the incident when one of its alerts is stored", async () => {
      const abort = new AbortController();
      const res = await app.request("/api/v1/incidents/stream", { signal: abort.signal });
      assert.equal(res.headers.get("content-type"), "text/event-stream");
      const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
      let text = "";
      while (!text.includes("event: ready")) text += (await reader.read()).value ?? "";
      const id = crypto.randomUUID();
      await store(lifecycle(id)[0]);
      const deadline = AbortSignal.timeout(10_000);
      while (!text.includes(id) && !deadline.aborted) text += (await reader.read()).value ?? "";
      const event = text.split("\n\n").find((e) => e.includes(id))!;
      assert.match(event, /^event: incident$/m);
      const data = JSON.parse(
        event
          .split("\n")
          .find((l) => l.startsWith("data: "))!
          .slice(6),
      );
      assert.equal(data.incident_id, id);
      assert.equal(data.state, "open");
      abort.abort();
      await reader.cancel();
    });
  });
}
