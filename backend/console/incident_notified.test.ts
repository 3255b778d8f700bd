// The incident page's "Notified" line and the Now row's "silenced" tag follow what the outbox sent, not the silence that holds now, on PGlite and PostgreSQL.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { waitFor } from "../_test/spawn_service.ts";
import { post } from "../alerts/_fixtures.ts";
import { createBackendApp } from "../app.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";
import { incidentAlert } from "../incidents/_fixtures.ts";
import { type Receiver, startReceiver } from "../notify/_test_receiver.ts";
import { createNotificationDispatcher } from "../notify/notification_dispatcher.ts";
import { parseNotifyConfig } from "../notify/notify_config.ts";

const MINUTE = 60_000;

/** Text of `html`, tags dropped and spaces folded. */
const text = (html: string) =>
  html
    .replace(/<[^>]+>/g, "")
    .replace(/\s+/g, " ")
    .trim();

for (const target of testTargets()) {
  describe(`what the console says was notified on ${target.kind}`, () => {
    let db: TestDatabase;
    let receiver: Receiver;
    const from = Date.parse("2026-12-01T09:00:00.000Z");
    let clock = from;
    let app: ReturnType<typeof createBackendApp>;

    before(async () => {
      db = await target.open();
      receiver = await startReceiver();
      // Routes configured, as `npm start` with NOTIFY_CONFIG gives the app (never started here).
      app = createBackendApp({
        database: db,
        clock: { now: () => clock },
        notifications: dispatcher("*"),
      });
    });
    after(async () => {
      await receiver.close();
      await db.dispose();
    });

    /** A silence over `stream` from `start` to `end`, stored as the API would at those times. */
    const silence = async (stream: string, start: number, end: number) => {
      const id = crypto.randomUUID();
      await db.sql`
        INSERT INTO silence (silence_id, stream_glob, sensor_globs, starts_at, ends_at, reason,
          created_by, created_at)
        VALUES (${id}, ${stream}, '{}'::text[], ${new Date(start)}, ${new Date(end)},
          'pump swap', 'Ana', ${new Date(start)})`;
      return id;
    };
    const store = async (alert: unknown) => {
      const res = await app.request("/api/v1/alert", post(alert));
      assert.equal(res.status, 201, await res.text());
    };
    const alert = (incidentId: string, stream: string, event: "opened" | "resolved", at: number) =>
      incidentAlert({
        incidentId,
        start: new Date(from).toISOString(),
        at: (at - from) / 1000,
        streamId: stream,
        event,
        sensors: [{ idx: 5, severity: 30 }],
      });
    const dispatcher = (stream: string) =>
      createNotificationDispatcher({
        database: db,
        config: parseNotifyConfig(
          JSON.stringify({
            routes: ["pager", "chat"].map((name) => ({
              name,
              match: { stream },
              webhook: { url: `${receiver.url}/${stream}/${name}` },
            })),
          }),
          {},
        ),
        pollMs: 20,
        now: () => clock,
      });
    /** Waits until `incident` holds `n` messages, none pending. */
    const settled = (incident: string, n: number) =>
      waitFor(async () => {
        const [c] = await db.sql<{ total: number; pending: number }[]>`
          SELECT count(*)::int AS total, count(*) FILTER (WHERE state = 'pending')::int AS pending
          FROM notification_outbox WHERE incident_id = ${incident}`;
        return c.total === n && c.pending === 0 ? true : undefined;
      }, `${n} settled messages of ${incident}`);
    const notifiedLine = async (id: string) => {
      const page = await (await app.request(`/incidents/${id}`)).text();
      const line = page.match(/<dd id="incident-notified"[\s\S]*?<\/dd>/)?.[0] ?? "";
      const silenceLine = page.match(/<dd id="incident-silence[\s\S]*?<\/dd>/)?.[0] ?? "";
      return { line, text: text(line), silence: text(silenceLine), page: text(page) };
    };
    const nowRow = async (id: string) =>
      ((await (await app.request("/")).text()).match(
        new RegExp(`<tr data-incident="${id}"[\\s\\S]*?</tr>`),
      ) ?? [""])[0];

    test("opened and resolved under a silence that has since expired: never notified, and tagged silenced", async () => {
      const stream = "hushed-1";
      const silenceId = await silence(stream, from, from + 10 * MINUTE);
      const id = crypto.randomUUID();
      clock = from + 5 * MINUTE;
      await store(alert(id, stream, "opened", from + MINUTE));
      await store(alert(id, stream, "resolved", from + 3 * MINUTE));
      const notify = dispatcher(stream);
      try {
        await notify.tick();
        await settled(id, 4);
      } finally {
        await notify.stop();
      }
      const states = await db.sql<{ state: string }[]>`
        SELECT state FROM notification_outbox WHERE incident_id = ${id}`;
      assert.deepEqual(
        states.map((s) => s.state),
        ["silenced", "silenced", "silenced", "silenced"],
      );
      assert.equal(receiver.on(`/${stream}/pager`).length, 0, "the receiver got nothing");
      // The silence is over; nothing was sent then or since.
      clock = from + 20 * MINUTE;
      const seen = await notifiedLine(id);
      assert.match(seen.line, /data-notified="silenced"/, seen.page);
      assert.match(seen.text, /^never notified: silenced by a maintenance silence/, seen.text);
      assert.ok(seen.line.includes(`/silences#silence-${silenceId}`), seen.line);
      assert.doesNotMatch(seen.page, /notified since/);
      assert.match(seen.silence, /by Ana \(pump swap\), until .*which no longer holds/);
      assert.match(await nowRow(id), /class="tag silenced"/, "never notified because silenced");
    });

    test("told on two routes, then resolved under a silence that holds: notified, not tagged silenced", async () => {
      const stream = "told-1";
      const id = crypto.randomUUID();
      clock = from + 30 * MINUTE;
      await store(alert(id, stream, "opened", from + 21 * MINUTE));
      const notify = dispatcher(stream);
      try {
        await notify.tick();
        await settled(id, 2);
        await receiver.until(
          () =>
            receiver.on(`/${stream}/pager`).length === 1 &&
            receiver.on(`/${stream}/chat`).length === 1,
          "the opening on both routes",
        );
        await silence(stream, from + 22 * MINUTE, from + 600 * MINUTE);
        await store(alert(id, stream, "resolved", from + 23 * MINUTE));
        await notify.tick();
        await settled(id, 4);
      } finally {
        await notify.stop();
      }
      const states = await db.sql<{ state: string }[]>`
        SELECT state FROM notification_outbox WHERE incident_id = ${id}`;
      assert.deepEqual(
        states.map((s) => s.state),
        ["delivered", "delivered", "delivered", "delivered"],
        "its end goes to the routes told of it, also under the silence",
      );
      const seen = await notifiedLine(id);
      assert.match(seen.line, /data-notified="yes"/, seen.page);
      assert.match(seen.text, /^yes: 2 routes \(chat, pager\), 4 messages delivered, first at /);
      assert.doesNotMatch(seen.page, /stored, not notified/);
      assert.match(seen.silence, /which holds now$/);
      assert.doesNotMatch(await nowRow(id), /class="tag silenced"/);
    });

    test("without routes: the page says notifications are not configured", async () => {
      const bare = createBackendApp({ database: db, clock: { now: () => clock } });
      const id = crypto.randomUUID();
      clock = from + 50 * MINUTE;
      const res = await bare.request(
        "/api/v1/alert",
        post(alert(id, "bare-1", "opened", from + 45 * MINUTE)),
      );
      assert.equal(res.status, 201);
      const page = await (await bare.request(`/incidents/${id}`)).text();
      const line = text(page.match(/<dd id="incident-notified"[\s\S]*?<\/dd>/)?.[0] ?? "");
      assert.equal(line, "nothing sent: notifications are not configured");
    });
  });
}
