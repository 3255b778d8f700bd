import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ourAlert, post } from "../alerts/_fixtures.ts";
import { createBackendApp } from "../app.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";
import { incidentAlert } from "../incidents/_fixtures.ts";

const TOKEN = "console-token-for-tests";
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

for (const target of testTargets()) {
  describe(`silences API on ${target.kind}`, () => {
    let db: TestDatabase;
    let clock = Date.parse("2026-11-24T09:00:00Z");
    let app: ReturnType<typeof createBackendApp>;
    let guarded: ReturnType<typeof createBackendApp>;

    /** A silence body ending 3 h after the clock; `o` replaces fields. */
    const body = (o: Record<string, unknown> = {}) => ({
      matchers: { stream: "line-1*", sensors: [] },
      ends_at: new Date(clock + 3 * HOUR).toISOString(),
      reason: "pump swap",
      created_by: "Ana",
      ...o,
    });

    const create = async (b: unknown, headers: Record<string, string> = {}) => {
      const res = await app.request("/api/v1/silences", post(b, headers));
      assert.equal(res.status, 201, await res.clone().text());
      return (await res.json()).silence;
    };
    const expire = (id: string, b: unknown = { by: "Ben", reason: "done early" }) =>
      app.request(`/api/v1/silences/${id}`, {
        method: "DELETE",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(b),
      });
    const list = async (state: string) => {
      const res = await app.request(`/api/v1/silences?state=${state}`);
      assert.equal(res.status, 200);
      return ((await res.json()).silences as { silence_id: string }[]).map((s) => s.silence_id);
    };
    const rows = async () => {
      const [r] = await db.sql`SELECT count(*)::int AS n FROM silence`;
      return r.n as number;
    };
    const store = async (alert: unknown) => {
      const res = await app.request("/api/v1/alert", post(alert));
      assert.equal(res.status, 201, await res.clone().text());
    };
    /** The silence a stored alert fell under, as `GET /api/v1/alerts/:id` returns it. */
    const alertSilence = async (alert: { alert_id: string }) => {
      const res = await app.request(`/api/v1/alerts/${alert.alert_id}`);
      assert.equal(res.status, 200);
      return (await res.json()).silence_id as string | null;
    };
    const silenceOf = async (incidentId: string) => {
      const res = await app.request(`/api/v1/incidents/${incidentId}`);
      assert.equal(res.status, 200);
      return (await res.json()).silence_id as string | null;
    };
    /** One incident opened at `at` on `stream` with `sensors`; resolves with its silence. */
    const incidentAt = async (at: string, stream: string, sensors = [4242]) => {
      const id = crypto.randomUUID();
      await store(
        incidentAlert({
          incidentId: id,
          event: "opened",
          start: at,
          streamId: stream,
          sensors: sensors.map((idx) => ({ idx, severity: 20 })),
        }),
      );
      return silenceOf(id);
    };

    before(async () => {
      db = await target.open();
      app = createBackendApp({ database: db, clock: { now: () => clock } });
      guarded = createBackendApp({
        database: db,
        clock: { now: () => clock },
        consoleToken: TOKEN,
      });
    });
    after(() => db.dispose());

    test("a silence goes pending → active → expired, and expiring it keeps the row", async () => {
      clock = Date.parse("2026-11-24T09:00:00Z");
      const s = await create(body({ starts_at: "2026-11-24T11:00:00+01:00" }));
      assert.equal(s.state, "pending");
      assert.equal(s.starts_at, "2026-11-24T10:00:00.000Z", "an offset is read as the instant");
      assert.deepEqual(s.matchers, { stream: "line-1*", sensors: [] });
      assert.equal(s.created_at, "2026-11-24T09:00:00.000Z");
      assert.equal(s.expired_at, null);
      assert.ok((await list("pending")).includes(s.silence_id));
      assert.ok(!(await list("active")).includes(s.silence_id));

      clock = Date.parse("2026-11-24T10:30:00Z");
      assert.ok((await list("active")).includes(s.silence_id));
      const res = await expire(s.silence_id);
      assert.equal(res.status, 200);
      const done = await res.json();
      assert.equal(done.changed, true);
      assert.equal(done.silence.state, "expired");
      assert.equal(done.silence.expired_at, "2026-11-24T10:30:00.000Z");
      assert.equal(done.silence.expired_by, "Ben");
      assert.equal(done.silence.expired_reason, "done early");
      assert.ok((await list("expired")).includes(s.silence_id));
      assert.ok(!(await list("active")).includes(s.silence_id));

      // A second expiry changes nothing: the first who/when/why stay.
      clock = Date.parse("2026-11-24T10:40:00Z");
      const again = await (await expire(s.silence_id, { by: "Cy" })).json();
      assert.equal(again.changed, false);
      assert.equal(again.silence.expired_by, "Ben");
      assert.equal(again.silence.expired_at, "2026-11-24T10:30:00.000Z");
      const one = await (await app.request(`/api/v1/silences/${s.silence_id}`)).json();
      assert.equal(one.state, "expired");
      assert.equal(one.reason, "pump swap");
    });

    test("a silence that reaches its end is expired without anyone expiring it", async () => {
      clock = Date.parse("2026-11-24T09:00:00Z");
      const s = await create(body({ ends_at: "2026-11-24T09:10:00Z" }));
      assert.equal(s.state, "active", "it starts now by default");
      clock = Date.parse("2026-11-24T09:10:00Z");
      assert.ok((await list("expired")).includes(s.silence_id));
      assert.equal((await (await expire(s.silence_id)).json()).changed, false);
    });

    test("a silence may start in the past, at most 90 days back", async () => {
      clock = Date.parse("2026-11-24T09:00:00Z");
      const s = await create(
        body({ starts_at: "2026-11-24T08:00:00Z", matchers: { stream: "past-1", sensors: [] } }),
      );
      assert.equal(s.starts_at, "2026-11-24T08:00:00.000Z", "kept as asked");
      assert.equal(s.created_at, "2026-11-24T09:00:00.000Z");
      assert.equal(s.state, "active");
      // An incident of that stretch stored from now on is marked with it.
      assert.equal(await incidentAt("2026-11-24T08:30:00Z", "past-1"), s.silence_id);
      for (const starts_at of ["0001-01-01T00:00:00Z", "2026-08-25T08:59:59Z"]) {
        const res = await app.request(
          "/api/v1/silences",
          post(body({ starts_at, matchers: { stream: "other" } })),
        );
        assert.equal(res.status, 400, starts_at);
        assert.match((await res.json()).message, /'starts_at' must be at most 90 days back/);
      }
    });

    test("DELETE takes who and why from the query when it has no body", async () => {
      clock = Date.parse("2026-11-24T09:00:00Z");
      const s = await create(body());
      const res = await app.request(`/api/v1/silences/${s.silence_id}?by=Dee&reason=ok`, {
        method: "DELETE",
      });
      assert.equal(res.status, 200);
      const { silence } = await res.json();
      assert.equal(silence.expired_by, "Dee");
      assert.equal(silence.expired_reason, "ok");
    });

    test("bad input is refused with 400 naming the field, and stores nothing", async () => {
      clock = Date.parse("2026-11-24T09:00:00Z");
      const recurrence = { days: ["sun"], from: "01:00", to: "04:00", tz: "Europe/Berlin" };
      const cases: [unknown, RegExp][] = [
        [{ ...body(), ends_at: undefined }, /^'ends_at' is required/],
        [body({ ends_at: "2026-11-24 12:00" }), /^'ends_at' must be an ISO 8601 time with a zone/],
        [
          body({ ends_at: "2026-11-24T12:00:00" }),
          /^'ends_at' must be an ISO 8601 time with a zone/,
        ],
        [
          body({ ends_at: new Date(clock + 91 * DAY).toISOString() }),
          /^'ends_at' must be at most 90 days ahead/,
        ],
        [body({ ends_at: "2026-11-24T08:00:00Z" }), /^'ends_at' must be in the future/],
        [body({ ends_at: "2026-11-31T08:00:00Z" }), /^'ends_at' must be .* on a day that exists/],
        [body({ starts_at: "2026-11-24T25:00:00Z" }), /^'starts_at' must be an ISO 8601/],
        [body({ ends_at: new Date(clock).toISOString() }), /^'ends_at' must be in the future/],
        [body({ starts_at: "2026-11-24T13:00:00Z" }), /^'ends_at' must be after 'starts_at'/],
        [body({ matchers: { stream: "*" } }), /^'confirm_all' must be true/],
        [
          body({ matchers: { stream: "**", sensors: ["feature_1", "*"] } }),
          /^'confirm_all' must be true/,
        ],
        [
          body({ matchers: { stream: "*" }, confirm_all: "yes" }),
          /^'confirm_all' must be true or false/,
        ],
        [body({ matchers: { stream: "line 1" } }), /^'matchers\.stream' must be a glob/],
        [body({ matchers: { stream: "" } }), /^'matchers\.stream' must be a glob/],
        [body({ matchers: { sensors: ["x"] } }), /^'matchers\.stream' is required/],
        [body({ matchers: "line-1" }), /^'matchers' must be an object/],
        [body({ recurrence: "weekly" }), /^'recurrence' must be/],
        [
          body({ matchers: { stream: "a", sensors: ["ok", "bad\nname"] } }),
          /^'matchers\.sensors\.1' must be/,
        ],
        [body({ matchers: { stream: "a", sensors: "x" } }), /^'matchers\.sensors' must be a list/],
        [
          body({ recurrence: { ...recurrence, tz: "Europe/Atlantis" } }),
          /^'recurrence\.tz' must be an IANA time zone/,
        ],
        [
          body({ recurrence: { ...recurrence, from: "05:00" } }),
          /^'recurrence\.to' must be after 'from'/,
        ],
        [
          body({ recurrence: { ...recurrence, to: "01:00" } }),
          /^'recurrence\.to' must be after 'from'/,
        ],
        [
          body({ recurrence: { ...recurrence, days: [] } }),
          /^'recurrence\.days' must be at least one day/,
        ],
        [
          body({ recurrence: { ...recurrence, days: ["funday"] } }),
          /^'recurrence\.days\.0' must be one of/,
        ],
        [
          body({ recurrence: { ...recurrence, until: "x" } }),
          /^'recurrence\.until' is not a field/,
        ],
        [body({ reason: "  " }), /^'reason' must be a reason of 1\.\.500 characters/],
        [body({ created_by: undefined }), /^'created_by' is required/],
        [body({ colour: "red" }), /^'colour' is not a field of a silence/],
        [body({ reason: "pump\0 swap" }), /^'reason' must be text without NUL characters/],
        [
          body({ created_by: "\ud83d" }),
          /^'created_by' must be text without NUL characters or unpaired/,
        ],
        [
          body({ matchers: { stream: "line-*", sensors: ["temp\udc00*"] } }),
          /^'matchers\.sensors\.0' must be text without NUL/,
        ],
        [
          body({ starts_at: "0000-01-01T00:00:00Z" }),
          /^'starts_at' must be a time within the years 1 to 9999/,
        ],
        [[1, 2], /^the body must be a JSON object/],
        [null, /^the body must be a JSON object/],
      ];
      const before = await rows();
      for (const [input, message] of cases) {
        const res = await app.request("/api/v1/silences", post(input));
        const answer = await res.json();
        assert.equal(res.status, 400, JSON.stringify(input));
        assert.equal(answer.error, "invalid_request", JSON.stringify(input));
        assert.match(answer.message, message, JSON.stringify(input));
      }
      const notJson = await app.request("/api/v1/silences", post("{nope"));
      assert.equal(notJson.status, 400);
      assert.equal((await notJson.json()).error, "invalid_json");
      // An empty body: the code an empty acknowledgement or verdict gets.
      const empty = await app.request("/api/v1/silences", post(""));
      assert.equal(empty.status, 400);
      assert.equal((await empty.json()).error, "invalid_json");
      assert.equal(await rows(), before, "nothing stored");

      // confirm_all lets a silence of everything through.
      await create(body({ matchers: { stream: "*" }, confirm_all: true }));
      assert.equal(await rows(), before + 1);
    });

    test("expiring and reading refuse bad ids, unknown silences and a missing name", async () => {
      clock = Date.parse("2026-11-24T09:00:00Z");
      const s = await create(body());
      const missing = await expire(s.silence_id, {});
      assert.equal(missing.status, 400);
      assert.match((await missing.json()).message, /^'by' is required/);
      const noBody = await app.request(`/api/v1/silences/${s.silence_id}`, { method: "DELETE" });
      assert.equal(noBody.status, 400);
      assert.equal((await expire("not-a-uuid")).status, 400);
      const unknown = await expire(crypto.randomUUID());
      assert.equal(unknown.status, 404);
      assert.equal((await unknown.json()).error, "not_found");
      assert.equal((await app.request("/api/v1/silences/xyz")).status, 400);
      assert.equal((await app.request(`/api/v1/silences/${crypto.randomUUID()}`)).status, 404);
      const badState = await app.request("/api/v1/silences?state=sleeping");
      assert.equal(badState.status, 400);
      assert.match((await badState.json()).message, /^'state' must be one of active/);
      const again = await app.request(`/api/v1/silences/${s.silence_id}`);
      assert.equal((await again.json()).expired_at, null, "refused expiries changed nothing");
    });

    test("lists page newest first with a cursor", async () => {
      clock = Date.parse("2026-11-25T09:00:00Z");
      const made: string[] = [];
      for (let i = 0; i < 3; i++) {
        clock += 1000;
        made.push((await create(body({ matchers: { stream: `page-${i}` } }))).silence_id);
      }
      const first = await (await app.request("/api/v1/silences?state=active&limit=2")).json();
      assert.deepEqual(
        first.silences.map((s: { silence_id: string }) => s.silence_id),
        [made[2], made[1]],
      );
      const second = await (
        await app.request(`/api/v1/silences?state=active&limit=2&cursor=${first.next_cursor}`)
      ).json();
      assert.equal(second.silences[0].silence_id, made[0]);
    });

    test("acting needs the console token where it is set; reading does not", async () => {
      clock = Date.parse("2026-11-24T09:00:00Z");
      const before = await rows();
      const refused = await guarded.request("/api/v1/silences", post(body()));
      assert.equal(refused.status, 401);
      assert.equal((await refused.json()).error, "unauthorized");
      assert.equal(await rows(), before);
      const res = await guarded.request(
        "/api/v1/silences",
        post(body(), { authorization: `Bearer ${TOKEN}` }),
      );
      assert.equal(res.status, 201);
      const { silence } = await res.json();
      const del = (headers: Record<string, string>) =>
        guarded.request(`/api/v1/silences/${silence.silence_id}?by=Eve`, {
          method: "DELETE",
          headers,
        });
      assert.equal((await del({})).status, 401);
      assert.equal((await del({ authorization: "Bearer wrong-token-wrong-token" })).status, 401);
      const read = await guarded.request(`/api/v1/silences/${silence.silence_id}`);
      assert.equal((await read.json()).expired_at, null);
      assert.equal((await guarded.request("/api/v1/silences?state=active")).status, 200);
      assert.equal((await del({ authorization: `Bearer ${TOKEN}` })).status, 200);
    });

    test("an incident inside a silence is stored and marked with it, matched by stream glob", async () => {
      clock = Date.parse("2026-12-01T08:00:00Z");
      const s = await create(
        body({
          matchers: { stream: "plant-?.boiler*" },
          starts_at: "2026-12-01T09:00:00Z",
          ends_at: "2026-12-01T10:00:00Z",
        }),
      );
      assert.equal(await incidentAt("2026-12-01T09:30:00Z", "plant-1.boiler.a"), s.silence_id);
      assert.equal(await incidentAt("2026-12-01T09:30:00Z", "plant-12.boiler"), null);
      assert.equal(await incidentAt("2026-12-01T09:30:00Z", "plant-1.kiln"), null);
      assert.equal(await incidentAt("2026-12-01T08:59:59Z", "plant-1.boiler"), null, "before");
      assert.equal(await incidentAt("2026-12-01T10:00:00Z", "plant-1.boiler"), null, "at the end");
      const listed = await (
        await app.request("/api/v1/incidents?stream_id=plant-1.boiler.a")
      ).json();
      assert.equal(listed.incidents[0].silence_id, s.silence_id, "lists show it too");
    });

    test("a silence scoped to sensors silences an incident only when it covers all its sensors", async () => {
      clock = Date.parse("2026-12-02T08:00:00Z");
      const s = await create(
        body({
          matchers: { stream: "kiln", sensors: ["feature_42*", "feature_9"] },
          starts_at: "2026-12-02T09:00:00Z",
          ends_at: "2026-12-02T10:00:00Z",
        }),
      );
      const t = "2026-12-02T09:15:00Z";
      assert.equal(await incidentAt(t, "kiln", [4242]), s.silence_id);
      assert.equal(await incidentAt(t, "kiln", [4242, 9]), s.silence_id);
      assert.equal(await incidentAt(t, "kiln", [4242, 17]), null, "feature_17 is not silenced");
      assert.equal(await incidentAt(t, "kiln", [94]), null);
      assert.equal(await incidentAt(t, "kiln-2", [4242]), null, "another stream");

      // Each alert is judged on its own: a sensor joining outside the silence leaves the next alert
      // uncovered (it is notified), while the first keeps the silence it fell under.
      const id = crypto.randomUUID();
      const alert = (event: "opened" | "updated", at: number, sensors: number[]) =>
        incidentAlert({
          incidentId: id,
          event,
          start: t,
          at,
          streamId: "kiln",
          sensors: sensors.map((idx) => ({ idx, severity: 20 })),
        });
      const [opened, joined, back] = [
        alert("opened", 0, [4242]),
        alert("updated", 60, [4242, 17]),
        alert("updated", 120, [4242]),
      ];
      for (const a of [opened, joined, back]) await store(a);
      assert.equal(await alertSilence(opened), s.silence_id);
      assert.equal(await alertSilence(joined), null, "feature_17 joined outside the silence");
      assert.equal(await alertSilence(back), null, "the incident has flagged feature_17");
      // An incident whose flagged sensors so far include an unsilenced one is not silenced by a
      // later alert listing only silenced ones.
      const mixed = crypto.randomUUID();
      const alertOf = (event: "opened" | "updated", at: number, sensors: number[]) =>
        incidentAlert({
          incidentId: mixed,
          event,
          start: t,
          at,
          streamId: "kiln",
          sensors: sensors.map((idx) => ({ idx, severity: 20 })),
        });
      await store(alertOf("opened", 0, [17]));
      await store(alertOf("updated", 60, [4242]));
      assert.equal(await silenceOf(mixed), null);
    });

    test("an open incident is silenced by its first alert inside a silence, and its alerts after the silence's end are not", async () => {
      clock = Date.parse("2026-12-03T08:00:00Z");
      const s = await create(
        body({
          matchers: { stream: "press" },
          starts_at: "2026-12-03T09:00:00Z",
          ends_at: "2026-12-03T10:00:00Z",
        }),
      );
      const id = crypto.randomUUID();
      const at = (event: "opened" | "updated" | "resolved", seconds: number) =>
        incidentAlert({
          incidentId: id,
          event,
          start: "2026-12-03T08:50:00Z",
          at: seconds,
          streamId: "press",
          sensors: [{ idx: 5, severity: 20 }],
        });
      const [opened, inside, resolved] = [
        at("opened", 0),
        at("updated", 15 * 60),
        at("resolved", 75 * 60),
      ];
      await store(opened);
      assert.equal(await silenceOf(id), null, "opened before the silence");
      await store(inside);
      assert.equal(await silenceOf(id), s.silence_id, "updated inside it");
      clock = Date.parse("2026-12-03T09:30:00Z");
      assert.equal((await expire(s.silence_id)).status, 200);
      await store(resolved);
      const incident = await (await app.request(`/api/v1/incidents/${id}`)).json();
      assert.equal(incident.state, "resolved");
      assert.equal(await alertSilence(opened), null);
      assert.equal(await alertSilence(inside), s.silence_id, "the record stays, never erased");
      assert.equal(await alertSilence(resolved), null, "after the expiry: not covered");
      // After the expiry, a new incident on the stream is not silenced.
      assert.equal(await incidentAt("2026-12-03T09:45:00Z", "press"), null);
      assert.equal(
        await incidentAt("2026-12-03T09:15:00Z", "press"),
        s.silence_id,
        "a late alert from before it",
      );
    });

    test("a weekly recurrence in Europe/Berlin follows the clock changes of March and October", async () => {
      const recurrence = { days: ["sun"], from: "01:00", to: "04:00", tz: "Europe/Berlin" };
      clock = Date.parse("2026-03-20T12:00:00Z");
      const spring = await create(
        body({ matchers: { stream: "dst-spring" }, ends_at: "2026-04-10T00:00:00Z", recurrence }),
      );
      assert.deepEqual(spring.recurrence, recurrence);
      // Sunday 29 March 2026: 02:00 CET jumps to 03:00 CEST, so 01:00-04:00 is 00:00Z-02:00Z.
      const springAt = (t: string) => incidentAt(t, "dst-spring");
      assert.equal(await springAt("2026-03-28T23:59:00Z"), null, "00:59 CET");
      assert.equal(await springAt("2026-03-29T00:00:00Z"), spring.silence_id, "01:00 CET");
      assert.equal(await springAt("2026-03-29T01:30:00Z"), spring.silence_id, "03:30 CEST");
      assert.equal(await springAt("2026-03-29T02:00:00Z"), null, "04:00 CEST");
      assert.equal(await springAt("2026-03-22T00:30:00Z"), spring.silence_id, "a week before, CET");
      assert.equal(await springAt("2026-04-05T01:30:00Z"), spring.silence_id, "a week after, CEST");
      assert.equal(await springAt("2026-04-05T02:30:00Z"), null, "04:30 CEST");
      assert.equal(await springAt("2026-03-30T00:30:00Z"), null, "a Monday");

      clock = Date.parse("2026-10-20T12:00:00Z");
      const autumn = await create(
        body({ matchers: { stream: "dst-autumn" }, ends_at: "2026-11-05T00:00:00Z", recurrence }),
      );
      // Sunday 25 October 2026: 03:00 CEST goes back to 02:00 CET, so 01:00-04:00 is 23:00Z-03:00Z.
      const autumnAt = (t: string) => incidentAt(t, "dst-autumn");
      assert.equal(await autumnAt("2026-10-24T22:59:00Z"), null, "00:59 CEST");
      assert.equal(await autumnAt("2026-10-24T23:00:00Z"), autumn.silence_id, "01:00 CEST");
      assert.equal(await autumnAt("2026-10-25T00:30:00Z"), autumn.silence_id, "02:30 CEST");
      assert.equal(await autumnAt("2026-10-25T01:30:00Z"), autumn.silence_id, "02:30 CET");
      assert.equal(await autumnAt("2026-10-25T02:59:00Z"), autumn.silence_id, "03:59 CET");
      assert.equal(await autumnAt("2026-10-25T03:00:00Z"), null, "04:00 CET");
      assert.equal(await autumnAt("2026-11-01T00:30:00Z"), autumn.silence_id, "a week after, CET");
      assert.equal(await autumnAt("2026-11-01T03:00:00Z"), null, "04:00 CET a week after");
    });

    test("an alert without an incident (frame mode) is marked with the silence it falls under", async () => {
      clock = Date.parse("2026-12-05T08:00:00Z");
      const whole = await create(
        body({ matchers: { stream: "press-*" }, ends_at: "2026-12-05T10:00:00Z" }),
      );
      const part = await create(
        body({
          matchers: { stream: "saw", sensors: ["feature_17", "feature_4*"] },
          ends_at: "2026-12-05T10:00:00Z",
        }),
      );
      /** Stores a frame-mode alert; resolves with its silence_id from both read APIs. */
      const frameAt = async (frame: string, stream: string, o: Record<string, unknown> = {}) => {
        const alert = ourAlert({
          stream_id: stream,
          timestamp: frame,
          frame_timestamp: frame,
          ...o,
        });
        await store(alert);
        const one = await app.request(`/api/v1/alerts/${alert.alert_id}`);
        assert.equal(one.status, 200);
        const got = (await one.json()).silence_id;
        const listed = await (
          await app.request(`/api/v1/alerts?stream_id=${stream}&from=${frame}&limit=500`)
        ).json();
        const row = listed.alerts.find((x: { alert_id: string }) => x.alert_id === alert.alert_id);
        assert.equal(row.silence_id, got, "the list says the same");
        return got as string | null;
      };
      assert.equal(await frameAt("2026-12-05T09:00:00.000Z", "press-1"), whole.silence_id);
      assert.equal(await frameAt("2026-12-05T07:59:59.000Z", "press-1"), null, "before it");
      assert.equal(await frameAt("2026-12-05T10:00:00.000Z", "press-1"), null, "at its end");
      assert.equal(await frameAt("2026-12-05T09:00:00.000Z", "lathe"), null, "another stream");
      // Sensor globs: it must cover every flagged sensor (feature_17 and feature_4051).
      assert.equal(await frameAt("2026-12-05T09:00:00.000Z", "saw"), part.silence_id);
      const other = {
        anomalous_features: [{ feature_idx: 9, score: 0.97, feature: "feature_9" }],
        num_anomalous_features: 1,
      };
      assert.equal(await frameAt("2026-12-05T09:00:00.000Z", "saw", other), null);

      // A weekly window through the hour repeated on 25 October 2026 holds throughout.
      clock = Date.parse("2026-10-20T12:00:00Z");
      const sunday = await create(
        body({
          matchers: { stream: "oven" },
          ends_at: "2026-11-05T00:00:00Z",
          recurrence: { days: ["sun"], from: "01:00", to: "02:30", tz: "Europe/Berlin" },
        }),
      );
      for (const t of [
        "2026-10-24T23:30:00.000Z",
        "2026-10-25T00:45:00.000Z",
        "2026-10-25T01:15:00.000Z",
      ]) {
        assert.equal(await frameAt(t, "oven"), sunday.silence_id, t);
      }
      assert.equal(await frameAt("2026-10-25T01:30:00.000Z", "oven"), null, "the second 02:30");
    });

    test("silence_id survives a second delivery of the same alert and concurrent repeats", async () => {
      clock = Date.parse("2026-12-04T08:00:00Z");
      const s = await create(
        body({ matchers: { stream: "mill" }, starts_at: "2026-12-04T08:00:00Z" }),
      );
      const id = crypto.randomUUID();
      const alert = incidentAlert({
        incidentId: id,
        event: "opened",
        start: "2026-12-04T08:30:00Z",
        streamId: "mill",
        sensors: [{ idx: 1, severity: 20 }],
      });
      const answers = await Promise.all(
        [0, 1, 2].map(() => app.request("/api/v1/alert", post(alert))),
      );
      assert.deepEqual(
        answers.map((r) => r.status),
        [201, 201, 201],
      );
      assert.equal(await silenceOf(id), s.silence_id);
      const [{ n }] = await db.sql`SELECT alerts AS n FROM incident WHERE incident_id = ${id}`;
      assert.equal(n, 1);
    });
  });
}
