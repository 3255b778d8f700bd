// A silence mutes what it covers, alert by alert: an incident's events outside it are told, on PGlite and PostgreSQL.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { testTargets } from "../db/_test_databases.ts";
import { incidentAlert } from "../incidents/_fixtures.ts";
import { anyAge, outboxKit } from "./_test_outbox.ts";

const MINUTE = 60_000;

for (const target of testTargets()) {
  describe(`silence coverage of notifications on ${target.kind}`, () => {
    const kit = outboxKit(target);
    const { store, rows, settled, bodies, hook } = kit;
    /** A silence stored as the API would, at times of our choosing (the API wants a future end). */
    const silence = async (o: {
      stream: string;
      sensors?: string[];
      from: string;
      to: string;
      recurrence?: unknown;
    }) => {
      const id = crypto.randomUUID();
      await kit.db.sql`
        INSERT INTO silence (silence_id, stream_glob, sensor_globs, starts_at, ends_at,
          recurrence, reason, created_by, created_at)
        VALUES (${id}, ${o.stream}, ${o.sensors ?? []}::text[], ${o.from}, ${o.to},
          ${o.recurrence ? JSON.stringify(o.recurrence) : null}::text::jsonb, 'maintenance',
          'Ana', ${o.from})`;
      return id;
    };
    const alertSilences = async (incident: string) =>
      (
        await kit.db.sql<{ silence_id: string | null }[]>`
          SELECT silence_id FROM alert WHERE incident_id = ${incident}
          ORDER BY frame_timestamp, alert_id`
      ).map((r) => r.silence_id);
    /** The incident summary's `silence_id`, as the API and the console show it. */
    const incidentSilence = async (incident: string) =>
      (
        await kit.db.sql<{ silence_id: string | null }[]>`
          SELECT silence_id FROM incident WHERE incident_id = ${incident}`
      )[0].silence_id;
    const dispatcher = (routes: unknown[], extra?: Parameters<typeof kit.dispatcher>[1]) =>
      kit.dispatcher(routes.map(anyAge), extra);

    test("a sensor joining outside a silence's scope is told, and so is every rise after the silence expired", async () => {
      const start = "2026-11-24T09:00:00.000Z";
      const s = await silence({
        stream: "scope-1",
        sensors: ["feature_4242"],
        from: "2026-11-24T08:00:00Z",
        to: "2026-11-24T10:00:00Z",
      });
      const id = crypto.randomUUID();
      const at = (
        event: "opened" | "updated" | "resolved",
        seconds: number,
        sensors: { idx: number; severity: number }[],
      ) =>
        incidentAlert({ incidentId: id, start, at: seconds, streamId: "scope-1", event, sensors });
      await store(at("opened", 0, [{ idx: 4242, severity: 5 }]));
      assert.equal(await incidentSilence(id), s, "silenced while its latest alert is covered");
      await store(
        at("updated", 60, [
          { idx: 4242, severity: 5 },
          { idx: 17, severity: 90 },
        ]),
      );
      await kit.db.sql`UPDATE silence SET expired_at = ${"2026-11-24T09:01:30Z"}, expired_by = 'Ben'
        WHERE silence_id = ${s}`;
      await store(
        at("updated", 120, [
          { idx: 4242, severity: 5 },
          { idx: 17, severity: 300 },
        ]),
      );
      await store(at("resolved", 180, []));
      // Each alert keeps the silence that covered it, if one did: the record is never erased.
      assert.deepEqual(await alertSilences(id), [s, null, null, null]);
      assert.equal(await incidentSilence(id), null, "no longer silenced: the console says so too");
      const notify = dispatcher([
        { name: "scope", match: { stream: "scope-*" }, webhook: hook("/scope") },
      ]);
      notify.start();
      try {
        await settled("scope", id, 4);
      } finally {
        await notify.stop();
      }
      assert.deepEqual(await rows("scope", id), [
        ["opened", "silenced"],
        ["updated", "delivered"],
        ["updated", "delivered"],
        ["resolved", "delivered"],
      ]);
      const sent = bodies("/scope");
      assert.deepEqual(
        sent.map((b) => [b.type, b.data.severity]),
        [
          ["incident.updated", 90],
          ["incident.updated", 300],
          ["incident.resolved", 0],
        ],
      );
      // The first the receiver hears carries the whole incident, as an opening would.
      assert.equal(sent[0].data.incident.state, "open");
      assert.equal(sent[0].data.incident.started_at, start);
      assert.deepEqual(
        sent[0].data.incident.sensors.map((x: { feature: string }) => x.feature).sort(),
        ["feature_17", "feature_4242"],
      );
    });

    test("an incident opened inside a weekly window is told by its first alert after the window, without a rise, and reminded of", async () => {
      // 2026-11-25 is a Wednesday: the window holds 09:00-09:01 UTC.
      const start = "2026-11-25T09:00:30.000Z";
      await silence({
        stream: "window-1",
        from: "2026-11-18T00:00:00Z",
        to: "2026-12-30T00:00:00Z",
        recurrence: { days: ["wed"], from: "09:00", to: "09:01", tz: "UTC" },
      });
      const id = crypto.randomUUID();
      const at = (event: "opened" | "updated" | "resolved", seconds: number) =>
        incidentAlert({
          incidentId: id,
          start,
          at: seconds,
          streamId: "window-1",
          event,
          sensors: [{ idx: 4242, severity: 12 }],
        });
      // Inside the window: the silence the opening fell under holds while it is planned.
      let clock = Date.parse("2026-11-25T09:00:50.000Z");
      const notify = dispatcher(
        [
          {
            name: "window",
            match: { stream: "window-*" },
            webhook: hook("/window"),
            repeat_every: "15m",
          },
        ],
        { now: () => clock },
      );
      try {
        await store(at("opened", 0));
        await notify.tick();
        await settled("window", id, 1);
        // The window ended; the incident goes on at the same severity on the same sensor.
        await store(at("updated", 90));
        await notify.tick();
        await settled("window", id, 2);
        clock += 16 * MINUTE;
        await notify.tick();
        await settled("window", id, 3);
        clock += MINUTE;
        await store(at("resolved", 600));
        await notify.tick();
        await settled("window", id, 4);
      } finally {
        await notify.stop();
      }
      assert.deepEqual(await rows("window", id), [
        ["opened", "silenced"],
        ["updated", "delivered"],
        ["still_open", "delivered"],
        ["resolved", "delivered"],
      ]);
      assert.deepEqual(
        bodies("/window").map((b) => b.type),
        ["incident.updated", "incident.still_open", "incident.resolved"],
      );
    });

    test("the end of an incident silenced while anyone could have heard of it is not sent, though it ends after the silence", async () => {
      const start = "2026-11-26T09:00:00.000Z";
      await silence({
        stream: "unheard-1",
        from: "2026-11-26T08:00:00Z",
        to: "2026-11-26T09:05:00Z",
      });
      const id = crypto.randomUUID();
      const at = (event: "opened" | "resolved", seconds: number) =>
        incidentAlert({
          incidentId: id,
          start,
          at: seconds,
          streamId: "unheard-1",
          event,
          sensors: [{ idx: 3, severity: 40 }],
        });
      await store(at("opened", 0));
      await store(at("resolved", 600));
      const notify = dispatcher([
        { name: "unheard", match: { stream: "unheard-*" }, webhook: hook("/unheard") },
      ]);
      notify.start();
      try {
        await settled("unheard", id, 2);
      } finally {
        await notify.stop();
      }
      assert.deepEqual(await rows("unheard", id), [
        ["opened", "silenced"],
        ["resolved", "silenced"],
      ]);
      assert.equal(kit.receiver.on("/unheard").length, 0);
    });

    test("a route whose first heard event still waits for a slot when the incident ends hears the end too", async () => {
      const start = "2026-11-27T09:00:00.000Z";
      await silence({ stream: "slot-2", from: "2026-11-27T08:00:00Z", to: "2026-11-27T09:01:00Z" });
      const [busy, hushed] = [crypto.randomUUID(), crypto.randomUUID()];
      const alert = (incidentId: string, stream: string, event: string, seconds: number) =>
        incidentAlert({
          incidentId,
          start,
          at: seconds,
          streamId: stream,
          event: event as "opened" | "updated" | "resolved",
          sensors: [{ idx: 2, severity: 11 }],
        });
      // The route's one delivery slot is held by another incident's opening until released.
      let release = () => {};
      const held = new Promise<{ status: number }>((resolve) => {
        release = () => resolve({ status: 200 });
      });
      kit.receiver.answer = (r) =>
        r.path === "/slot" && JSON.parse(r.body).data.incident.incident_id === busy
          ? held
          : { status: 200 };
      const notify = dispatcher([
        { name: "slot", match: { stream: "slot-*" }, webhook: hook("/slot"), concurrency: 1 },
      ]);
      try {
        await store(alert(busy, "slot-1", "opened", 0));
        await notify.tick();
        await kit.receiver.until((rs) => rs.some((r) => r.path === "/slot"), "the busy opening");
        await store(alert(hushed, "slot-2", "opened", 0));
        await store(alert(hushed, "slot-2", "updated", 120));
        await notify.tick();
        // Its update, the first event outside the silence, is planned and waits, never tried.
        assert.deepEqual(await rows("slot", hushed), [
          ["opened", "silenced"],
          ["updated", "pending"],
        ]);
        await store(alert(hushed, "slot-2", "resolved", 300));
        await notify.tick();
        release();
        notify.start();
        await settled("slot", hushed, 3);
      } finally {
        release();
        await notify.stop();
        kit.receiver.answer = () => ({ status: 200 });
      }
      assert.deepEqual(await rows("slot", hushed), [
        ["opened", "silenced"],
        ["updated", "delivered"],
        ["resolved", "delivered"],
      ]);
      assert.deepEqual(
        bodies("/slot")
          .filter((b) => b.data.incident.incident_id === hushed)
          .map((b) => b.type),
        ["incident.updated", "incident.resolved"],
      );
    });

    test("reminders follow the incident's latest alert: they stop while its silence holds and resume once it ends", async () => {
      const start = "2026-11-28T09:00:00.000Z";
      // The opening's frame time lies before it, the update's inside it.
      await silence({
        stream: "cover-1",
        from: "2026-11-28T09:00:30Z",
        to: "2026-12-02T08:20:00Z",
      });
      const id = crypto.randomUUID();
      const at = (event: "opened" | "updated", seconds: number) =>
        incidentAlert({
          incidentId: id,
          start,
          at: seconds,
          streamId: "cover-1",
          event,
          sensors: [{ idx: 8, severity: 25 }],
        });
      let clock = Date.parse("2026-12-02T08:00:00.000Z");
      const notify = dispatcher(
        [
          {
            name: "cover",
            match: { stream: "cover-*" },
            webhook: hook("/cover"),
            repeat_every: "15m",
          },
        ],
        { now: () => clock },
      );
      try {
        await store(at("opened", 0));
        await notify.tick();
        await settled("cover", id, 1);
        await store(at("updated", 60));
        clock += 16 * MINUTE;
        await notify.tick();
        await notify.tick();
        assert.deepEqual(
          await rows("cover", id),
          [["opened", "delivered"]],
          "covered: no reminder",
        );
        // The silence ended; the incident goes on with no new alert: its reminders resume, and
        // the route, told of it before the silence, gets no second opening.
        clock += 16 * MINUTE;
        await notify.tick();
        await settled("cover", id, 2);
      } finally {
        await notify.stop();
      }
      assert.deepEqual(await alertSilences(id).then((s) => s.map((x) => x !== null)), [
        false,
        true,
      ]);
      assert.deepEqual(await rows("cover", id), [
        ["opened", "delivered"],
        ["still_open", "delivered"],
      ]);
      assert.deepEqual(
        bodies("/cover").map((b) => b.type),
        ["incident.opened", "incident.still_open"],
      );
    });
  });
}
