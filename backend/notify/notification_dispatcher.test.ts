// Notifications end to end in-process: alerts stored through the app, the outbox on PGlite/PostgreSQL, a real HTTP receiver.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { verifyWebhook } from "../../contracts/webhook_signature.ts";
import { waitFor } from "../_test/spawn_service.ts";
import { post } from "../alerts/_fixtures.ts";
import { createBackendApp } from "../app.ts";
import { testTargets } from "../db/_test_databases.ts";
import { loadMigrations, migrate } from "../db/migrate.ts";
import { incidentAlert, lifecycle } from "../incidents/_fixtures.ts";
import { anyAge, outboxKit } from "./_test_outbox.ts";
import { createNotificationDispatcher, messageId } from "./notification_dispatcher.ts";
import { parseNotifyConfig } from "./notify_config.ts";
import { createOutboxRepository } from "./outbox_repository.ts";

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

for (const target of testTargets()) {
  describe(`notifications on ${target.kind}`, () => {
    const kit = outboxKit(target);
    const { store, hook } = kit;
    const states = async (route: string) =>
      (
        await kit.db.sql<{ event: string; state: string; attempts: number; message_id: string }[]>`
          SELECT event, state, attempts, message_id FROM notification_outbox
          WHERE route = ${route} ORDER BY event_at, message_id`
      ).map((r) => r);
    const settled = (route: string, n: number) =>
      waitFor(async () => {
        const rows = await states(route);
        return rows.length === n && rows.every((r) => r.state !== "pending") ? rows : undefined;
      }, `${n} settled messages on ${route}`);
    const dispatcher = (routes: unknown[], extra?: Parameters<typeof kit.dispatcher>[1]) =>
      kit.dispatcher(routes.map(anyAge), extra);

    test("dispatcher delivers opened, a severity rise and resolved once per route, signed and in order", async () => {
      const incident = crypto.randomUUID();
      const events = lifecycle(incident, undefined, "line-1");
      for (const alert of events) await store(alert);
      const notify = dispatcher([
        { name: "all", webhook: hook("/all", { secret: SECRET }) },
        { name: "chat", webhook: hook("/chat", { format: "slack" }) },
      ]);
      notify.start();
      const rows = await settled("all", 3);
      await settled("chat", 3);
      // A repeated alert and more passes change nothing: one row per event and route.
      await store(events[2]);
      await notify.tick();
      await notify.stop();
      assert.deepEqual(
        rows.map((r) => [r.event, r.state]),
        [
          ["opened", "delivered"],
          ["updated", "delivered"],
          ["resolved", "delivered"],
        ],
      );
      assert.equal((await states("all")).length, 3);
      const all = kit.receiver.on("/all");
      assert.deepEqual(
        all.map((r) => JSON.parse(r.body).type),
        ["incident.opened", "incident.updated", "incident.resolved"],
      );
      for (const [i, r] of all.entries()) {
        await verifyWebhook({ secret: SECRET, headers: r.headers, body: r.body });
        assert.equal(r.id, await messageId(events[i].alert_id, "all"));
        const data = JSON.parse(r.body).data;
        assert.equal(data.event_id, events[i].alert_id);
        assert.equal(data.incident.incident_id, incident);
        assert.equal(data.incident.stream_id, "line-1");
      }
      assert.equal(new Set(all.map((r) => r.id)).size, 3);
      const chat = kit.receiver.on("/chat");
      assert.equal(chat.length, 3);
      assert.equal(chat[0].headers.get("webhook-signature"), null);
      assert.match(
        JSON.parse(chat[0].body).text,
        /Incident opened on line-1 \(process\), severity 12/,
      );
    });

    test("routes match on stream glob, minimum severity and kind; updated only when severity rises", async () => {
      const start = "2026-11-25T09:00:00.000Z";
      const [a, b, c, d] = [1, 2, 3, 4].map(() => crypto.randomUUID());
      const alerts = [
        // a: line stream, severity 12 → "lines" only.
        incidentAlert({
          incidentId: a,
          start,
          streamId: "m-line-7",
          event: "opened",
          sensors: [{ idx: 1, severity: 12 }],
        }),
        // b: severity 25 → "severe"; its update at a lower severity tells no one.
        incidentAlert({
          incidentId: b,
          start,
          streamId: "m-press",
          event: "opened",
          sensors: [{ idx: 2, severity: 25 }],
        }),
        incidentAlert({
          incidentId: b,
          start,
          streamId: "m-press",
          event: "updated",
          at: 5,
          sensors: [{ idx: 2, severity: 21 }],
        }),
        // c: a sensor fault → "sensors".
        {
          ...incidentAlert({
            incidentId: c,
            start,
            streamId: "m-pump",
            event: "opened",
            sensors: [{ idx: 3, severity: 8 }],
          }),
          kind: "sensor",
        },
        // d: opened below "severe", then an update crossing it.
        incidentAlert({
          incidentId: d,
          start,
          streamId: "m-mill",
          event: "opened",
          sensors: [{ idx: 4, severity: 5 }],
        }),
        incidentAlert({
          incidentId: d,
          start,
          streamId: "m-mill",
          event: "updated",
          at: 5,
          sensors: [{ idx: 4, severity: 22 }],
        }),
      ];
      for (const alert of alerts) await store(alert);
      const notify = dispatcher([
        { name: "lines", match: { stream: "m-line-*" }, webhook: hook("/lines") },
        { name: "severe", match: { stream: "m-*", min_severity: 20 }, webhook: hook("/severe") },
        { name: "sensors", match: { stream: "m-*", kind: "sensor" }, webhook: hook("/sensors") },
        { name: "process", match: { stream: "m-*", kind: "process" }, webhook: hook("/process") },
      ]);
      notify.start();
      await settled("lines", 1);
      await settled("severe", 2);
      await settled("sensors", 1);
      await settled("process", 4);
      await notify.stop();
      const incidentOf = (path: string) =>
        kit.receiver.on(path).map((r) => {
          const data = JSON.parse(r.body).data;
          return `${data.incident.incident_id}:${data.event}`;
        });
      assert.deepEqual(incidentOf("/lines"), [`${a}:opened`]);
      assert.deepEqual(incidentOf("/severe").sort(), [`${b}:opened`, `${d}:updated`].sort());
      assert.deepEqual(incidentOf("/sensors"), [`${c}:opened`]);
      assert.deepEqual(
        incidentOf("/process").sort(),
        [`${a}:opened`, `${b}:opened`, `${d}:opened`, `${d}:updated`].sort(),
      );
    });

    test("a failed delivery is retried with backoff under one webhook-id, then dead-lettered and shown on Health", async () => {
      const incident = crypto.randomUUID();
      await store(lifecycle(incident, undefined, "retry-1")[0]);
      kit.receiver.answer = (r) =>
        r.path === "/flaky"
          ? { status: 503, body: "<b>down</b> for maintenance" }
          : { status: 200 };
      const notify = dispatcher(
        [
          {
            name: "flaky",
            match: { stream: "retry-*" },
            webhook: hook("/flaky"),
            retry: { attempts: 3, initial: "100ms", max: "1s" },
          },
        ],
        { random: () => 0 },
      );
      notify.start();
      const [row] = await settled("flaky", 1);
      await notify.stop();
      kit.receiver.answer = () => ({ status: 200 });
      assert.equal(row.state, "dead");
      assert.equal(row.attempts, 3);
      const tries = kit.receiver.on("/flaky");
      assert.equal(tries.length, 3);
      assert.equal(new Set(tries.map((t) => t.id)).size, 1);
      // The backoff doubles: at least 100 ms, then 200 ms between tries.
      assert.ok(tries[1].at - tries[0].at >= 100, `first wait ${tries[1].at - tries[0].at} ms`);
      assert.ok(tries[2].at - tries[1].at >= 200, `second wait ${tries[2].at - tries[1].at} ms`);
      const [stored] = await kit.db.sql<{ last_status: number; last_error: string }[]>`
        SELECT last_status, last_error FROM notification_outbox WHERE message_id = ${row.message_id}`;
      assert.equal(stored.last_status, 503);
      assert.match(stored.last_error, /^HTTP 503: <b>down<\/b>/);

      const page = await (
        await createBackendApp({ database: kit.db, notifications: notify }).request("/status")
      ).text();
      assert.match(page, /<h2 id="notify-heading">Notifications<\/h2>/);
      assert.ok(page.includes(`data-message-id="${row.message_id}"`));
      assert.ok(
        page.includes("HTTP 503: &lt;b&gt;down&lt;/b&gt;"),
        "the receiver's answer is text",
      );
      assert.match(
        page,
        /<tr data-route="flaky" data-pending="0" data-delivered="0" data-dead="1">/,
      );
    });

    test("an answer that no retry can fix (400) dead-letters the message after one try", async () => {
      await store(lifecycle(crypto.randomUUID(), undefined, "bad-1")[0]);
      kit.receiver.answer = (r) => (r.path === "/bad" ? { status: 400 } : { status: 200 });
      const notify = dispatcher([
        { name: "bad", match: { stream: "bad-*" }, webhook: hook("/bad") },
      ]);
      notify.start();
      const [row] = await settled("bad", 1);
      await notify.stop();
      kit.receiver.answer = () => ({ status: 200 });
      assert.equal(row.state, "dead");
      assert.equal(row.attempts, 1);
      assert.equal(kit.receiver.on("/bad").length, 1);
    });

    test("a last attempt whose outcome was never recorded is tried once more, not dead-lettered unheard", async () => {
      const incident = crypto.randomUUID();
      await store(lifecycle(incident, undefined, "cut-1")[0]);
      let clock = Date.parse("2026-12-03T08:00:00.000Z");
      const route = {
        name: "cut",
        match: { stream: "cut-*" },
        // Long enough for the second attempt's answer on a busy host (it must succeed).
        webhook: hook("/cut", { timeout: "5s" }),
        retry: { attempts: 1 },
      };
      // The only attempt is claimed and never answered; the process stops during it.
      kit.receiver.answer = (r) => (r.path === "/cut" ? "hold" : { status: 200 });
      const first = dispatcher([route], { now: () => clock });
      await first.tick();
      await kit.receiver.until((rs) => rs.some((r) => r.path === "/cut"), "the first attempt");
      await first.stop();
      // Another process, once the lease ran out: the receiver answers now.
      kit.receiver.answer = () => ({ status: 200 });
      clock += 60_000;
      const second = dispatcher([route], { now: () => clock });
      await second.tick();
      const [row] = await settled("cut", 1);
      await second.stop();
      assert.equal(row.state, "delivered");
      assert.equal(row.attempts, 2);
      // A third claim with no outcome would be one too many: dead, saying why.
      await kit.db.sql`UPDATE notification_outbox SET state = 'pending', attempts = 2,
        locked_until = NULL WHERE message_id = ${row.message_id}`;
      const third = dispatcher([route], { now: () => clock });
      await third.tick();
      const [dead] = await settled("cut", 1);
      await third.stop();
      assert.equal(dead.state, "dead");
      const [why] = await kit.db.sql<{ last_error: string }[]>`
        SELECT last_error FROM notification_outbox WHERE message_id = ${row.message_id}`;
      assert.match(why.last_error, /retry\.attempts used up/);
    });

    test("events planned after the incident moved on are told as they happened, not as it is now", async () => {
      const incident = crypto.randomUUID();
      // A backlog (say, after a restart): all three events are stored before any is planned.
      for (const alert of lifecycle(incident, undefined, "late-1")) await store(alert);
      const notify = dispatcher([
        { name: "late", match: { stream: "late-*" }, webhook: hook("/late") },
      ]);
      notify.start();
      await settled("late", 3);
      await notify.stop();
      const bodies = kit.receiver.on("/late").map((r) => JSON.parse(r.body));
      assert.deepEqual(
        bodies.map((b) => [b.type, b.data.incident.state, b.data.incident.max_severity]),
        [
          ["incident.opened", "open", 12],
          ["incident.updated", "open", 30],
          ["incident.resolved", "resolved", 30],
        ],
      );
      assert.equal(bodies[0].data.incident.resolved_at, null);
      assert.notEqual(bodies[2].data.incident.resolved_at, null);
    });

    test("a route another instance knows is left to it for an hour, then its messages are dead letters", async () => {
      await store(lifecycle(crypto.randomUUID(), undefined, "roll-1")[0]);
      let clock = Date.parse("2026-12-04T08:00:00.000Z");
      kit.receiver.answer = (r) => (r.path === "/pager" ? { status: 503 } : { status: 200 });
      const routes = [
        { name: "ops", match: { stream: "roll-*" }, webhook: hook("/ops") },
        {
          name: "pager",
          match: { stream: "roll-*" },
          webhook: hook("/pager"),
          retry: { attempts: 20 },
        },
      ];
      // The instance with the new file planned both; its pager message waits for a retry.
      const newer = dispatcher(routes, { now: () => clock });
      await newer.tick();
      await settled("ops", 1);
      await waitFor(async () => {
        const [row] = await kit.db.sql<{ attempts: number; locked: boolean }[]>`
          SELECT attempts, locked_until IS NOT NULL AS locked FROM notification_outbox
          WHERE route = 'pager' AND incident_id IN (SELECT incident_id FROM incident WHERE stream_id = 'roll-1')`;
        return row?.attempts === 1 && !row.locked ? row : undefined;
      }, "the pager message failed once");
      await newer.stop();
      // An instance still on the old file (ops only) leaves it alone...
      const older = dispatcher([routes[0]], { now: () => clock });
      clock += 30 * 60_000;
      await older.tick();
      assert.equal((await states("pager")).at(-1)?.state, "pending");
      // ...until nobody has taken it for an hour: then it is a dead letter, saying why.
      clock += 31 * 60_000;
      await older.tick();
      await older.stop();
      kit.receiver.answer = () => ({ status: 200 });
      const [gone] = await kit.db.sql<{ state: string; last_error: string }[]>`
        SELECT state, last_error FROM notification_outbox
        WHERE route = 'pager' AND incident_id IN (SELECT incident_id FROM incident WHERE stream_id = 'roll-1')`;
      assert.equal(gone.state, "dead");
      assert.equal(gone.last_error, "the route is not in NOTIFY_CONFIG");
    });

    test("a route whose receiver hangs does not hold back another route", async () => {
      const ids = [1, 2, 3].map(() => crypto.randomUUID());
      for (const id of ids) await store(lifecycle(id, undefined, "hang-1")[0]);
      kit.receiver.answer = (r) => (r.path === "/hung" ? "hold" : { status: 200 });
      const notify = dispatcher([
        { name: "hung", match: { stream: "hang-*" }, webhook: hook("/hung"), concurrency: 1 },
        { name: "fine", match: { stream: "hang-*" }, webhook: hook("/fine") },
      ]);
      notify.start();
      await settled("fine", 3);
      await kit.receiver.until(
        (r) => r.some((x) => x.path === "/hung"),
        "the hung route's first try",
      );
      assert.deepEqual(
        (await states("hung")).map((r) => r.state),
        ["pending", "pending", "pending"],
      );
      assert.equal(kit.receiver.on("/hung").length, 1, "one slot, held by the hung receiver");
      await notify.stop(AbortSignal.timeout(0));
      kit.receiver.answer = () => ({ status: 200 });
    });

    test("many deliveries in flight at once draw no listener-leak warning", async () => {
      // Node prints a MaxListenersExceededWarning (not a JSON log line) past 10 listeners on one
      // signal; three routes of four slots put 12 deliveries in flight on the dispatcher's.
      const warnings: Error[] = [];
      const onWarning = (warning: Error) => warnings.push(warning);
      process.on("warning", onWarning);
      const names = ["many-a", "many-b", "many-c"];
      kit.receiver.answer = (r) => (r.path.startsWith("/many-") ? "hold" : { status: 200 });
      const notify = dispatcher(
        names.map((name) => ({ name, match: { stream: "many-*" }, webhook: hook(`/${name}`) })),
      );
      try {
        for (let i = 0; i < 4; i++)
          await store(lifecycle(crypto.randomUUID(), undefined, "many-1")[0]);
        notify.start();
        await kit.receiver.until(
          (r) => r.filter((x) => x.path.startsWith("/many-")).length === 12,
          "12 deliveries held at once",
        );
        // A warning is emitted on a later tick than the listener that caused it.
        await new Promise((resolve) => setImmediate(resolve));
        assert.deepEqual(
          warnings.filter((w) => w.name === "MaxListenersExceededWarning").map((w) => w.message),
          [],
        );
      } finally {
        await notify.stop(AbortSignal.timeout(0));
        process.off("warning", onWarning);
        kit.receiver.answer = () => ({ status: 200 });
      }
    });

    test("silenced incidents are not notified, whether the silence came before planning or before a first try; a message tried already goes on", async () => {
      const [before, during] = [crypto.randomUUID(), crypto.randomUUID()];
      const silence = crypto.randomUUID();
      await kit.db.sql`
        INSERT INTO silence (silence_id, stream_glob, starts_at, ends_at, reason, created_by, created_at)
        VALUES (${silence}, 'quiet-*', now() - interval '1 hour', now() + interval '1 hour',
          'maintenance', 'test', now())`;
      const [opened, , resolved] = lifecycle(before, undefined, "quiet-1");
      await store(opened);
      // Its opening's alert fell under the silence (the notifier reads each event's alert).
      await kit.db.sql`UPDATE alert SET silence_id = ${silence} WHERE incident_id = ${before}`;
      await store(resolved);
      const [duringOpened, duringUpdated] = lifecycle(during, undefined, "quiet-2");
      await store(duringOpened);
      await store(duringUpdated);
      let down = true;
      kit.receiver.answer = (r) =>
        r.path === "/quiet" && down ? { status: 503 } : { status: 200 };
      const notify = dispatcher([
        {
          name: "quiet",
          match: { stream: "quiet-*" },
          webhook: hook("/quiet"),
          // The retry well after the test's UPDATE below, however slow the host.
          retry: { attempts: 5, initial: "3s" },
        },
      ]);
      notify.start();
      // The first try of `during`'s opening fails; its update waits behind it, not tried yet. The
      // silence then covers the incident before the retry: the update is never sent, the opening
      // (which may have reached the receiver) is, so the receiver's story stays whole.
      await kit.receiver.until((r) => r.some((x) => x.path === "/quiet"), "the first try");
      await kit.db.sql`UPDATE alert SET silence_id = ${silence} WHERE incident_id = ${during}`;
      down = false;
      await settled("quiet", 4);
      await notify.stop();
      kit.receiver.answer = () => ({ status: 200 });
      const of = async (incident: string) =>
        (
          await kit.db.sql<{ event: string; state: string }[]>`
            SELECT event, state FROM notification_outbox
            WHERE route = 'quiet' AND incident_id = ${incident} ORDER BY event_at`
        ).map((r) => [r.event, r.state]);
      assert.deepEqual(await of(before), [
        ["opened", "silenced"],
        ["resolved", "silenced"],
      ]);
      assert.deepEqual(await of(during), [
        ["opened", "delivered"],
        ["updated", "silenced"],
      ]);
      const tries = kit.receiver.on("/quiet");
      assert.deepEqual(
        tries.map((t) => [JSON.parse(t.body).data.event_id, t.answered]),
        [
          [duringOpened.alert_id, 503],
          [duringOpened.alert_id, 200],
        ],
      );
    });

    test("an incident that falls under a silence created through the API is not notified", async () => {
      const created = await kit.app.request(
        "/api/v1/silences",
        post({
          matchers: { stream: "hushed-*" },
          ends_at: new Date(Date.now() + 3_600_000).toISOString(),
          reason: "valve maintenance",
          created_by: "Ana",
        }),
      );
      assert.equal(created.status, 201);
      const hushed = crypto.randomUUID();
      const loud = crypto.randomUUID();
      await store(lifecycle(hushed, new Date().toISOString(), "hushed-1")[0]);
      await store(lifecycle(loud, new Date().toISOString(), "loud-1")[0]);
      const notify = dispatcher([
        { name: "hush", match: { stream: "hushed-*" }, webhook: hook("/hush") },
        { name: "loud", match: { stream: "loud-*" }, webhook: hook("/loud") },
      ]);
      notify.start();
      const [row] = await settled("hush", 1);
      await settled("loud", 1);
      await notify.stop();
      assert.equal(row.state, "silenced");
      assert.equal(kit.receiver.on("/hush").length, 0);
      assert.equal(kit.receiver.on("/loud").length, 1);
    });

    test("a route told an incident opened hears it ended, though its kind changed or a silence began since", async () => {
      const start = new Date(Date.now() - 60_000).toISOString();
      const moved = crypto.randomUUID();
      const hushed = crypto.randomUUID();
      const notify = dispatcher([
        {
          name: "kind-instruments",
          match: { stream: "kind-*", kind: "sensor" },
          webhook: hook("/kind-instruments"),
        },
        { name: "told-pager", match: { stream: "told-*" }, webhook: hook("/told-pager") },
      ]);
      const sensor = { idx: 1, severity: 12 };
      // A stuck sensor (kind sensor) that a related sensor joins: the incident becomes process.
      await store({
        ...incidentAlert({
          incidentId: moved,
          start,
          streamId: "kind-1",
          event: "opened",
          sensors: [sensor],
        }),
        kind: "sensor",
      });
      await store(
        incidentAlert({
          incidentId: hushed,
          start,
          streamId: "told-1",
          event: "opened",
          sensors: [sensor],
        }),
      );
      await notify.tick();
      await settled("kind-instruments", 1);
      await settled("told-pager", 1);
      const two = [sensor, { idx: 2, severity: 9 }];
      await store({
        ...incidentAlert({
          incidentId: moved,
          start,
          at: 5,
          streamId: "kind-1",
          event: "updated",
          sensors: two,
        }),
        kind: "process",
      });
      // A silence on the pager's stream, created after it was told.
      const silence = await kit.app.request(
        "/api/v1/silences",
        post({
          matchers: { stream: "told-*" },
          ends_at: new Date(Date.now() + 3_600_000).toISOString(),
          reason: "valve maintenance",
          created_by: "Ana",
        }),
      );
      assert.equal(silence.status, 201);
      await store({
        ...incidentAlert({
          incidentId: moved,
          start,
          at: 10,
          streamId: "kind-1",
          event: "resolved",
          sensors: two,
        }),
        kind: "process",
      });
      await store(
        incidentAlert({
          incidentId: hushed,
          start,
          at: 120,
          streamId: "told-1",
          event: "resolved",
          sensors: [sensor],
        }),
      );
      await notify.tick();
      await settled("kind-instruments", 2);
      await settled("told-pager", 2);
      await notify.stop();
      const types = (path: string) => kit.receiver.on(path).map((r) => JSON.parse(r.body).type);
      assert.deepEqual(types("/kind-instruments"), ["incident.opened", "incident.resolved"]);
      assert.deepEqual(types("/told-pager"), ["incident.opened", "incident.resolved"]);
      const [stored] = await kit.db
        .sql`SELECT silence_id FROM incident WHERE incident_id = ${hushed}`;
      assert.notEqual(stored.silence_id, null, "the resolution fell under the silence");
    });

    test("a route told an incident opened hears it ended when both are planned in one pass", async () => {
      const start = new Date(Date.now() - 60_000).toISOString();
      const id = crypto.randomUUID();
      const sensor = { idx: 1, severity: 12 };
      const two = [sensor, { idx: 2, severity: 9 }];
      // Stored while the notifier was behind: its opening, the kind's change and its end.
      await store({
        ...incidentAlert({
          incidentId: id,
          start,
          streamId: "batch-1",
          event: "opened",
          sensors: [sensor],
        }),
        kind: "sensor",
      });
      await store({
        ...incidentAlert({
          incidentId: id,
          start,
          at: 5,
          streamId: "batch-1",
          event: "updated",
          sensors: two,
        }),
        kind: "process",
      });
      await store({
        ...incidentAlert({
          incidentId: id,
          start,
          at: 10,
          streamId: "batch-1",
          event: "resolved",
          sensors: two,
        }),
        kind: "process",
      });
      const notify = dispatcher([
        {
          name: "batch-instruments",
          match: { stream: "batch-*", kind: "sensor" },
          webhook: hook("/batch-instruments"),
        },
      ]);
      // One pass plans all three; later passes deliver them in order.
      notify.start();
      const rows = await settled("batch-instruments", 2);
      await notify.stop();
      assert.deepEqual(
        rows.map((r) => [r.event, r.state]),
        [
          ["opened", "delivered"],
          ["resolved", "delivered"],
        ],
      );
    });

    test("a route an incident comes to match while open hears of it then; a late opening is not sent after the end", async () => {
      const start = new Date(Date.now() - 60_000).toISOString();
      const [moved, atEnd, late] = [1, 2, 3].map(() => crypto.randomUUID());
      const alert = (
        incidentId: string,
        streamId: string,
        event: "opened" | "updated" | "resolved",
        at: number,
        kind: "sensor" | "process",
        sensors: { idx: number; severity: number }[],
      ) => ({ ...incidentAlert({ incidentId, start, at, streamId, event, sensors }), kind });
      const eventsOf = async (incident: string) =>
        (
          await kit.db.sql<{ event: string }[]>`
            SELECT event FROM notification_outbox WHERE incident_id = ${incident}
            ORDER BY event_at`
        ).map((r) => r.event);
      const sensor = { idx: 1, severity: 20 };
      const two = [sensor, { idx: 2, severity: 15 }];
      const notify = dispatcher([
        {
          name: "came-process",
          match: { stream: "came-*", kind: "process" },
          webhook: hook("/came-process"),
        },
      ]);
      try {
        // A stuck sensor (kind sensor) that a related sensor joins at the same severity: the
        // incident becomes a process fault while open, without a rise.
        await store(alert(moved, "came-1", "opened", 0, "sensor", [sensor]));
        await store(alert(moved, "came-1", "updated", 5, "process", two));
        await notify.tick();
        assert.deepEqual(await eventsOf(moved), ["updated"], "told while it is open, as an update");
        await settled("came-process", 1);
        await store(alert(moved, "came-1", "resolved", 10, "process", two));
        await notify.tick();
        await settled("came-process", 2);
        // The kind changed only with the resolution: the route hears that it happened and ended.
        await store(alert(atEnd, "came-2", "opened", 0, "sensor", [sensor]));
        await store(alert(atEnd, "came-2", "resolved", 10, "process", two));
        await notify.tick();
        assert.deepEqual(await eventsOf(atEnd), ["resolved"]);
        await settled("came-process", 3);
        // Out of order: the resolution is planned before its opening arrives. The route hears of
        // the incident once, as ended; the late opening raises no page that nothing would close.
        await store(alert(late, "came-3", "resolved", 10, "process", [sensor]));
        await notify.tick();
        await store(alert(late, "came-3", "opened", 0, "process", [sensor]));
        await notify.tick();
        assert.deepEqual(await eventsOf(late), ["resolved"], "no opening after its end");
        await settled("came-process", 4);
      } finally {
        await notify.stop();
      }
      const bodies = kit.receiver.on("/came-process").map((r) => JSON.parse(r.body));
      assert.deepEqual(
        bodies.map((b) => [b.type, b.data.incident.incident_id, b.data.incident.kind]),
        [
          ["incident.updated", moved, "process"],
          ["incident.resolved", moved, "process"],
          ["incident.resolved", atEnd, "process"],
          ["incident.resolved", late, "process"],
        ],
      );
      assert.equal(bodies[0].data.incident.state, "open");
    });

    test("an opening that arrives after an update was sent pages no route twice", async () => {
      const start = new Date(Date.now() - 60_000).toISOString();
      const incident = crypto.randomUUID();
      const at = (event: "opened" | "updated", seconds: number, severity: number) =>
        incidentAlert({
          incidentId: incident,
          start,
          at: seconds,
          streamId: "late-open-1",
          event,
          sensors: [{ idx: 1, severity }],
        });
      // The engine sends alerts concurrently, with retries: the update lands first.
      const [opened, updated] = [at("opened", 0, 12), at("updated", 5, 30)];
      kit.receiver.answer = (r) =>
        r.path === "/late-open-gone" ? { status: 410 } : { status: 200 };
      const notify = dispatcher([
        { name: "late-open", match: { stream: "late-open-*" }, webhook: hook("/late-open") },
        // Its update died: the route never heard of the incident, so the opening is its first.
        {
          name: "late-open-gone",
          match: { stream: "late-open-*" },
          webhook: hook("/late-open-gone"),
        },
      ]);
      try {
        await store(updated);
        await notify.tick();
        await settled("late-open", 1);
        await settled("late-open-gone", 1);
        await store(opened);
        await notify.tick();
        await settled("late-open-gone", 2);
        await notify.tick();
      } finally {
        await notify.stop();
        kit.receiver.answer = () => ({ status: 200 });
      }
      assert.deepEqual(
        (await states("late-open")).map((r) => [r.event, r.state]),
        [["updated", "delivered"]],
      );
      const heard = kit.receiver.on("/late-open");
      assert.deepEqual(
        heard.map((r) => JSON.parse(r.body).type),
        ["incident.updated"],
        "one page: the update was its opening",
      );
      assert.deepEqual(
        (await states("late-open-gone")).map((r) => [r.event, r.state]),
        [
          ["opened", "dead"],
          ["updated", "dead"],
        ],
      );
      assert.deepEqual(
        kit.receiver.on("/late-open-gone").map((r) => JSON.parse(r.body).type),
        ["incident.updated", "incident.opened"],
      );
    });

    test("a silence created while an incident is open stops its reminders at once", async () => {
      const incident = crypto.randomUUID();
      let clock = Date.now();
      const [opened] = lifecycle(incident, new Date(clock - 60_000).toISOString(), "hush-later-1");
      await store(opened);
      const notify = dispatcher(
        [
          {
            name: "quiet-remind",
            match: { stream: "hush-later-*" },
            webhook: hook("/hush-later"),
            repeat_every: "15m",
          },
        ],
        { now: () => clock },
      );
      await notify.tick();
      await settled("quiet-remind", 1);
      clock += 16 * 60_000;
      await notify.tick();
      await settled("quiet-remind", 2);
      const silence = await kit.app.request(
        "/api/v1/silences",
        post({
          matchers: { stream: "hush-later-*" },
          starts_at: new Date(clock - 60_000).toISOString(),
          ends_at: new Date(clock + 3_600_000).toISOString(),
          reason: "shutdown",
          created_by: "Ana",
        }),
      );
      assert.equal(silence.status, 201);
      for (let i = 0; i < 3; i++) {
        clock += 16 * 60_000;
        await notify.tick();
      }
      const rows = await settled("quiet-remind", 5);
      // After the silence ends, the reminders go on.
      clock += 60 * 60_000;
      await notify.tick();
      const after = await settled("quiet-remind", 6);
      await notify.stop();
      assert.deepEqual(
        rows.map((r) => [r.event, r.state]),
        [
          ["opened", "delivered"],
          ["still_open", "delivered"],
          ["still_open", "silenced"],
          ["still_open", "silenced"],
          ["still_open", "silenced"],
        ],
      );
      assert.deepEqual(after.at(-1)?.state, "delivered");
      assert.equal(kit.receiver.on("/hush-later").length, 3);
    });

    test("an acknowledgement stops an incident's reminders; its resolution still goes out", async () => {
      const incident = crypto.randomUUID();
      let clock = Date.now();
      const [opened, , resolved] = lifecycle(
        incident,
        new Date(clock - 60_000).toISOString(),
        "ack-remind-1",
      );
      await store(opened);
      let down = false;
      kit.receiver.answer = (r) =>
        r.path === "/ack-remind" && down ? { status: 503 } : { status: 200 };
      const notify = dispatcher(
        [
          {
            name: "ack-remind",
            match: { stream: "ack-remind-*" },
            webhook: hook("/ack-remind"),
            repeat_every: "15m",
            retry: { attempts: 5, initial: "1h", max: "1h" },
          },
        ],
        { now: () => clock },
      );
      try {
        await notify.tick();
        await settled("ack-remind", 1);
        // A reminder waiting out the receiver's outage when the incident is acknowledged.
        down = true;
        clock += 16 * 60_000;
        await notify.tick();
        await waitFor(async () => {
          const rows = await states("ack-remind");
          return rows.length === 2 && rows[1].attempts === 1 ? rows : undefined;
        }, "a reminder that failed once");
        down = false;
        const ack = await kit.app.request(`/api/v1/incidents/${incident}/ack`, post({ by: "Ana" }));
        assert.equal(ack.status, 201);
        for (let i = 0; i < 3; i++) {
          clock += 16 * 60_000;
          await notify.tick();
        }
        await store(resolved);
        await notify.tick();
        const rows = await settled("ack-remind", 3);
        assert.deepEqual(
          rows.map((r) => [r.event, r.state]),
          // By event time: the resolution's frame came before the reminder's period.
          [
            ["opened", "delivered"],
            ["resolved", "delivered"],
            ["still_open", "superseded"],
          ],
        );
        assert.deepEqual(
          kit.receiver
            .on("/ack-remind")
            .filter((r) => r.answered === 200)
            .map((r) => JSON.parse(r.body).type),
          ["incident.opened", "incident.resolved"],
        );
      } finally {
        await notify.stop();
        kit.receiver.answer = () => ({ status: 200 });
      }
    });

    test("repeat_every reminds of an open incident once per period until it resolves", async () => {
      const incident = crypto.randomUUID();
      const [opened, , resolved] = lifecycle(incident, undefined, "remind-1");
      await store(opened);
      let clock = Date.parse("2026-12-01T08:00:00.000Z");
      const notify = dispatcher(
        [
          {
            name: "remind",
            match: { stream: "remind-*" },
            webhook: hook("/remind"),
            repeat_every: "1h",
          },
        ],
        { now: () => clock },
      );
      const delivered = (n: number) =>
        waitFor(async () => {
          const rows = await states("remind");
          return rows.length === n && rows.every((r) => r.state === "delivered") ? rows : undefined;
        }, `${n} delivered reminders`);
      await notify.tick();
      await delivered(1);
      clock += 59 * 60_000;
      await notify.tick();
      clock += 2 * 60_000;
      await notify.tick();
      await notify.tick();
      await delivered(2);
      // After a long pause only the current period's reminder goes out, not one per missed period.
      clock += 3 * 3_600_000;
      await notify.tick();
      await delivered(3);
      await store(resolved);
      await notify.tick();
      await delivered(4);
      clock += 5 * 3_600_000;
      await notify.tick();
      await notify.stop();
      const sent = kit.receiver.on("/remind").map((r) => JSON.parse(r.body));
      assert.deepEqual(
        sent.map((b) => [b.type, b.data.event_id]),
        [
          ["incident.opened", opened.alert_id],
          ["incident.still_open", `${incident}/still_open/1`],
          ["incident.still_open", `${incident}/still_open/4`],
          ["incident.resolved", resolved.alert_id],
        ],
      );
      assert.equal((await states("remind")).length, 4);
    });

    test("reminders that waited out a receiver's outage give way to the newest; none goes after the resolution", async () => {
      const incident = crypto.randomUUID();
      const [opened, , resolved] = lifecycle(incident, undefined, "outage-1");
      let down = true;
      kit.receiver.answer = (r) =>
        r.path === "/outage" && down ? { status: 503 } : { status: 200 };
      let clock = Date.parse("2026-12-02T08:00:00.000Z");
      const notify = dispatcher(
        [
          {
            name: "outage",
            match: { stream: "outage-*" },
            webhook: hook("/outage"),
            repeat_every: "1h",
            retry: { attempts: 50, initial: "1ms", max: "1ms" },
          },
        ],
        { now: () => clock },
      );
      const failedTimes = (n: number) =>
        waitFor(async () => {
          const [row] = await kit.db.sql<{ attempts: number; locked: boolean }[]>`
            SELECT attempts, locked_until IS NOT NULL AS locked FROM notification_outbox
            WHERE route = 'outage' AND event = 'opened'`;
          return row?.attempts === n && !row.locked ? row : undefined;
        }, `the opened message failed ${n} times`);
      try {
        await store(opened);
        await notify.tick();
        await failedTimes(1);
        // Three periods pass while the receiver is down: each plans its reminder.
        for (let hour = 1; hour <= 3; hour++) {
          clock += 3_600_000 + 60_000;
          await notify.tick();
          await failedTimes(hour + 1);
        }
        down = false;
        clock += 60_000;
        const done = await waitFor(async () => {
          await notify.tick();
          const r = await states("outage");
          return r.every((m) => m.state !== "pending") ? r : undefined;
        }, "the outage's messages settled");
        assert.deepEqual(
          done.map((m) => [m.event, m.state]),
          [
            ["opened", "delivered"],
            ["still_open", "superseded"],
            ["still_open", "superseded"],
            ["still_open", "delivered"],
          ],
        );
        // A reminder planned, then its incident resolved before it could go: it never goes.
        down = true;
        clock += 3_600_000;
        await notify.tick();
        await waitFor(async () => {
          const [row] = await kit.db.sql<{ attempts: number; locked: boolean }[]>`
            SELECT attempts, locked_until IS NOT NULL AS locked FROM notification_outbox
            WHERE route = 'outage' AND event_key = ${`${incident}/still_open/4`}`;
          return row?.attempts === 1 && !row.locked ? row : undefined;
        }, "the fourth period's reminder tried and failed");
        await store(resolved);
        down = false;
        const after = await waitFor(async () => {
          await notify.tick();
          const r = await states("outage");
          return r.length === 6 && r.every((m) => m.state !== "pending") ? r : undefined;
        }, "the resolution delivered");
        // (The fixture's frame times are days before the moved clock: sorted first.)
        assert.deepEqual(after.map((m) => [m.event, m.state]).sort(), [
          ["opened", "delivered"],
          ["resolved", "delivered"],
          ["still_open", "delivered"],
          ["still_open", "superseded"],
          ["still_open", "superseded"],
          ["still_open", "superseded"],
        ]);
        const sent = kit.receiver.on("/outage").filter((r) => r.answered === 200);
        assert.deepEqual(
          sent.map((r) => JSON.parse(r.body).data.event_id),
          [opened.alert_id, `${incident}/still_open/3`, resolved.alert_id],
        );
        const [why] = await kit.db.sql<{ last_error: string }[]>`
          SELECT last_error FROM notification_outbox
          WHERE route = 'outage' AND event_key = ${`${incident}/still_open/4`}`;
        assert.equal(why.last_error, "the incident resolved first");
      } finally {
        await notify.stop();
        kit.receiver.answer = () => ({ status: 200 });
      }
    });

    test("a route whose opening is still being sent when a silence begins hears the incident ended", async () => {
      const incident = crypto.randomUUID();
      const start = new Date(Date.now() - 60_000).toISOString();
      const sensor = { idx: 1, severity: 12 };
      // The opening's first try is never answered (a page gateway that hangs): it times out and
      // waits for a retry, which is answered.
      let tries = 0;
      kit.receiver.answer = (r) =>
        r.path === "/unclosed" && tries++ === 0 ? "hold" : { status: 200 };
      const notify = dispatcher([
        {
          name: "unclosed",
          match: { stream: "unclosed-*" },
          webhook: hook("/unclosed", { timeout: "1s" }),
          retry: { attempts: 5, initial: "100ms", max: "100ms" },
        },
      ]);
      try {
        await store(
          incidentAlert({
            incidentId: incident,
            start,
            streamId: "unclosed-1",
            event: "opened",
            sensors: [sensor],
          }),
        );
        await notify.tick();
        await kit.receiver.until(
          (rs) => rs.some((r) => r.path === "/unclosed"),
          "the opening sent",
        );
        // While it is in flight a maintenance silence begins, and the incident ends inside it.
        const silence = await kit.app.request(
          "/api/v1/silences",
          post({
            matchers: { stream: "unclosed-*" },
            starts_at: new Date(Date.now() - 30_000).toISOString(),
            ends_at: new Date(Date.now() + 3_600_000).toISOString(),
            reason: "maintenance",
            created_by: "Ana",
          }),
        );
        assert.equal(silence.status, 201);
        await store(
          incidentAlert({
            incidentId: incident,
            start,
            at: 55,
            streamId: "unclosed-1",
            event: "resolved",
            sensors: [sensor],
          }),
        );
        // Plans the end and settles the outbox while the opening is in flight, then retries it.
        await notify.tick();
        notify.start();
        const rows = await settled("unclosed", 2);
        assert.deepEqual(
          rows.map((r) => [r.event, r.state]),
          [
            ["opened", "delivered"],
            ["resolved", "delivered"],
          ],
        );
      } finally {
        await notify.stop();
        kit.receiver.answer = () => ({ status: 200 });
      }
      assert.deepEqual(
        kit.receiver
          .on("/unclosed")
          .filter((r) => r.answered === 200)
          .map((r) => JSON.parse(r.body).type),
        ["incident.opened", "incident.resolved"],
      );
      const [stored] = await kit.db
        .sql`SELECT silence_id FROM incident WHERE incident_id = ${incident}`;
      assert.notEqual(stored.silence_id, null, "the end fell under the silence");
    });

    test("an opening never tried (its route at its concurrency limit) when a silence covers the incident and its end: neither is sent", async () => {
      const [busy, hushed] = [crypto.randomUUID(), crypto.randomUUID()];
      const start = new Date(Date.now() - 60_000).toISOString();
      const sensor = { idx: 2, severity: 11 };
      // The route's one delivery slot is held by another incident's opening until released.
      let release = () => {};
      const held = new Promise<{ status: number }>((resolve) => {
        release = () => resolve({ status: 200 });
      });
      kit.receiver.answer = (r) =>
        r.path === "/slots" && JSON.parse(r.body).data.incident.incident_id === busy
          ? held
          : { status: 200 };
      const notify = dispatcher([
        {
          name: "slots",
          match: { stream: "slots-*" },
          webhook: hook("/slots"),
          concurrency: 1,
        },
      ]);
      const opening = (incidentId: string, streamId: string) =>
        incidentAlert({ incidentId, start, streamId, event: "opened", sensors: [sensor] });
      try {
        await store(opening(busy, "slots-1"));
        await notify.tick();
        await kit.receiver.until((rs) => rs.some((r) => r.path === "/slots"), "the busy opening");
        // Planned while the slot is taken: pending, never tried.
        await store(opening(hushed, "slots-2"));
        await notify.tick();
        const [waiting] = await kit.db.sql<{ state: string; attempts: number; tried: boolean }[]>`
          SELECT state, attempts, last_attempt_at IS NOT NULL AS tried FROM notification_outbox
          WHERE route = 'slots' AND incident_id = ${hushed}`;
        assert.deepEqual({ ...waiting }, { state: "pending", attempts: 0, tried: false });
        // A silence covers the incident, which then ends under it.
        const silence = crypto.randomUUID();
        await kit.db.sql`
          INSERT INTO silence (silence_id, stream_glob, starts_at, ends_at, reason, created_by, created_at)
          VALUES (${silence}, 'slots-2', now() - interval '1 hour', now() + interval '1 hour',
            'maintenance', 'test', now())`;
        await kit.db.sql`UPDATE incident SET silence_id = ${silence} WHERE incident_id = ${hushed}`;
        await store(
          incidentAlert({
            incidentId: hushed,
            start,
            at: 55,
            streamId: "slots-2",
            event: "resolved",
            sensors: [sensor],
          }),
        );
        // The slot frees; the next pass plans the end, settles the outbox and claims in one go.
        release();
        await waitFor(async () => {
          const [row] = await kit.db.sql<{ state: string; locked: boolean }[]>`
            SELECT state, locked_until IS NOT NULL AS locked FROM notification_outbox
            WHERE route = 'slots' AND incident_id = ${busy}`;
          return row.state === "delivered" && !row.locked ? row : undefined;
        }, "the busy opening delivered");
        await new Promise((resolve) => setTimeout(resolve, 50));
        await notify.tick();
        notify.start();
        await settled("slots", 3);
      } finally {
        release();
        await notify.stop();
        kit.receiver.answer = () => ({ status: 200 });
      }
      const of = async (incident: string) =>
        (
          await kit.db.sql<{ event: string; state: string }[]>`
            SELECT event, state FROM notification_outbox
            WHERE route = 'slots' AND incident_id = ${incident} ORDER BY event_at`
        ).map((r) => [r.event, r.state]);
      assert.deepEqual(await of(busy), [["opened", "delivered"]]);
      assert.deepEqual(await of(hushed), [
        ["opened", "silenced"],
        ["resolved", "silenced"],
      ]);
      assert.deepEqual(
        kit.receiver
          .on("/slots")
          .map((r) => JSON.parse(r.body).data.incident.incident_id)
          .filter((id) => id === hushed),
        [],
        "the receiver hears nothing of the silenced incident",
      );
    });

    test("an open incident whose opening died in a receiver's outage is told by its next update", async () => {
      const incident = crypto.randomUUID();
      const start = new Date(Date.now() - 60_000).toISOString();
      const sensor = { idx: 5, severity: 14 };
      const update = (at: number) =>
        incidentAlert({
          incidentId: incident,
          start,
          at,
          streamId: "outage-open-1",
          event: "updated",
          sensors: [sensor],
        });
      const planned = (alertId: string) =>
        waitFor(async () => {
          const [row] = await kit.db.sql<{ planned: boolean }[]>`
            SELECT notify_planned_at IS NOT NULL AS planned FROM incident_event
            WHERE alert_id = ${alertId}`;
          return row?.planned ? row : undefined;
        }, `update ${alertId} planned`);
      let down = true;
      kit.receiver.answer = (r) =>
        r.path === "/outage-open" && down ? { status: 503 } : { status: 200 };
      const notify = dispatcher([
        {
          name: "outage-open",
          match: { stream: "outage-open-*" },
          webhook: hook("/outage-open"),
          retry: { attempts: 2, initial: "1ms", max: "1ms" },
        },
      ]);
      try {
        await store(
          incidentAlert({
            incidentId: incident,
            start,
            streamId: "outage-open-1",
            event: "opened",
            sensors: [sensor],
          }),
        );
        notify.start();
        const [dead] = await settled("outage-open", 1);
        assert.equal(dead.state, "dead");
        // The receiver is back; the incident goes on at the same severity (no rise).
        down = false;
        const first = update(3600);
        await store(first);
        await planned(first.alert_id);
        // Planned in the statement that marked the update planned.
        assert.equal((await states("outage-open")).length, 2, "the update is a message");
        const rows = await settled("outage-open", 2);
        assert.deepEqual(
          rows.map((r) => [r.event, r.state]),
          [
            ["opened", "dead"],
            ["updated", "delivered"],
          ],
        );
        // Told once: the next update at the same severity is no news.
        const second = update(7200);
        await store(second);
        await planned(second.alert_id);
        assert.equal((await states("outage-open")).length, 2);
      } finally {
        await notify.stop();
        kit.receiver.answer = () => ({ status: 200 });
      }
    });

    test("a reminder waiting for a retry when a silence is created over its incident is not sent", async () => {
      let clock = Date.now();
      const incident = crypto.randomUUID();
      const [opened] = lifecycle(incident, new Date(clock - 60_000).toISOString(), "retry-hush-1");
      await store(opened);
      let down = false;
      kit.receiver.answer = (r) =>
        r.path === "/retry-hush" && down ? { status: 503 } : { status: 200 };
      const notify = dispatcher(
        [
          {
            name: "retry-hush",
            match: { stream: "retry-hush-*" },
            webhook: hook("/retry-hush"),
            repeat_every: "4h",
            retry: { attempts: 5, initial: "10s", max: "10s" },
          },
        ],
        { now: () => clock, random: () => 0 },
      );
      try {
        await notify.tick();
        await settled("retry-hush", 1);
        // Four hours on the receiver has a hiccup: the reminder fails once and waits 10 s.
        down = true;
        clock += 4 * 3_600_000 + 1000;
        await notify.tick();
        await waitFor(async () => {
          const [row] = await kit.db.sql<{ attempts: number; locked: boolean }[]>`
            SELECT attempts, locked_until IS NOT NULL AS locked FROM notification_outbox
            WHERE route = 'retry-hush' AND event = 'still_open'`;
          return row?.attempts === 1 && !row.locked ? row : undefined;
        }, "the reminder failed once");
        const silence = await kit.app.request(
          "/api/v1/silences",
          post({
            matchers: { stream: "retry-hush-*" },
            ends_at: new Date(clock + 8 * 3_600_000).toISOString(),
            reason: "kiln shut down for relining",
            created_by: "Ana",
          }),
        );
        assert.equal(silence.status, 201);
        down = false;
        clock += 60_000;
        await notify.tick();
        const rows = await settled("retry-hush", 2);
        assert.deepEqual(
          rows.map((r) => [r.event, r.state]),
          [
            ["opened", "delivered"],
            ["still_open", "silenced"],
          ],
        );
      } finally {
        await notify.stop();
        kit.receiver.answer = () => ({ status: 200 });
      }
      assert.deepEqual(
        kit.receiver
          .on("/retry-hush")
          .filter((r) => r.answered === 200)
          .map((r) => JSON.parse(r.body).type),
        ["incident.opened"],
      );
    });

    test("an incident's end waits for its reminder in flight, and a reminder is never claimed after the end", async () => {
      let clock = Date.now();
      const incident = crypto.randomUUID();
      const start = new Date(clock).toISOString();
      const sensor = { idx: 2, severity: 11 };
      // The reminder's answer comes only when the test says so (a slow receiver); whether it had
      // been answered when the end arrived is noted.
      const typeOf = (r: { body: string }) => JSON.parse(r.body).type as string;
      let answerReminder: (() => void) | undefined;
      let reminderAnsweredBeforeEnd: boolean | undefined;
      kit.receiver.answer = (r) => {
        if (r.path !== "/end-waits") return { status: 200 };
        if (typeOf(r) === "incident.resolved") {
          const reminder = kit.receiver
            .on("/end-waits")
            .find((x) => typeOf(x) === "incident.still_open");
          reminderAnsweredBeforeEnd = reminder?.answered === 200;
        }
        if (typeOf(r) !== "incident.still_open") return { status: 200 };
        return new Promise((resolve) => {
          answerReminder = () => resolve({ status: 200 });
        });
      };
      const route = {
        name: "end-waits",
        match: { stream: "end-waits-*" },
        webhook: hook("/end-waits"),
        repeat_every: "1h",
      };
      const notify = dispatcher([route], { now: () => clock });
      try {
        await store(
          incidentAlert({
            incidentId: incident,
            start,
            streamId: "end-waits-1",
            event: "opened",
            sensors: [sensor],
          }),
        );
        await notify.tick();
        await settled("end-waits", 1);
        clock += 3_600_000 + 2000;
        await notify.tick();
        await kit.receiver.until(
          (rs) => rs.some((r) => r.path === "/end-waits" && typeOf(r) === "incident.still_open"),
          "the reminder in flight",
        );
        // The end's frame was stamped 30 s before the reminder fell due; it arrives now.
        await store(
          incidentAlert({
            incidentId: incident,
            start,
            at: 3600 - 30,
            streamId: "end-waits-1",
            event: "resolved",
            sensors: [sensor],
          }),
        );
        await notify.tick();
        await notify.tick();
        assert.deepEqual(
          (await states("end-waits")).map((r) => [r.event, r.state]),
          [
            ["opened", "delivered"],
            ["resolved", "pending"],
            ["still_open", "pending"],
          ],
          "the end waits while the reminder is being sent",
        );
        assert.equal(kit.receiver.on("/end-waits").length, 2);
        answerReminder?.();
        const done = await waitFor(async () => {
          await notify.tick();
          const rows = await states("end-waits");
          return rows.every((r) => r.state === "delivered") ? rows : undefined;
        }, "the end delivered");
        assert.equal(done.length, 3);
      } finally {
        await notify.stop();
        kit.receiver.answer = () => ({ status: 200 });
      }
      assert.deepEqual(kit.receiver.on("/end-waits").map(typeOf), [
        "incident.opened",
        "incident.still_open",
        "incident.resolved",
      ]);
      assert.equal(reminderAnsweredBeforeEnd, true, "the end came after the reminder's answer");
      // A reminder of the resolved incident planned in the instant before (settle ran earlier) is
      // not claimed: it becomes superseded.
      const outbox = createOutboxRepository(kit.db);
      const late = await messageId(`${incident}/still_open/2`, route.name);
      const at = new Date(clock);
      await outbox.plan(
        [
          {
            message_id: late,
            route: route.name,
            event_key: `${incident}/still_open/2`,
            incident_id: incident,
            event: "still_open",
            event_at: at,
            severity: 11,
            body: "{}",
            state: "pending",
          },
        ],
        [],
        at,
      );
      assert.equal((await outbox.claim(route.name, 4, at, new Date(clock + 60_000))).length, 0);
      const [row] = await kit.db.sql<{ state: string; last_error: string; attempts: number }[]>`
        SELECT state, last_error, attempts FROM notification_outbox WHERE message_id = ${late}`;
      assert.deepEqual(row, {
        state: "superseded",
        last_error: "the incident resolved first",
        attempts: 0,
      });
    });

    test("Health counts messages by when they were done, and shows a route's last delivery however old", async () => {
      let clock = Date.now();
      kit.receiver.answer = (r) => (r.path === "/done-slow" ? { status: 503 } : { status: 200 });
      const notify = dispatcher(
        [
          { name: "done-quiet", match: { stream: "done-quiet-*" }, webhook: hook("/done-quiet") },
          {
            name: "done-slow",
            match: { stream: "done-slow-*" },
            webhook: hook("/done-slow"),
            retry: { attempts: 2, initial: "13h", max: "13h" },
          },
        ],
        { now: () => clock, random: () => 0 },
      );
      const route = async (name: string) =>
        (await notify.status()).routes.find((r) => r.route === name);
      try {
        await store(
          lifecycle(crypto.randomUUID(), new Date(clock).toISOString(), "done-quiet-1")[0],
        );
        await notify.tick();
        await settled("done-quiet", 1);
        const delivered = await route("done-quiet");
        assert.equal(delivered?.delivered, 1);
        assert.notEqual(delivered?.last_delivered_at, null);
        // A day and an hour later: no delivery in the window, the last one still shown.
        clock += 25 * 3_600_000;
        assert.deepEqual(await route("done-quiet"), {
          ...delivered,
          delivered: 0,
        });
        // A message planned 25 h ago that died 12 h ago (its retry came 13 h after its first try)
        // is a dead letter of the last 24 h.
        await store(
          lifecycle(crypto.randomUUID(), new Date(clock).toISOString(), "done-slow-1")[0],
        );
        await notify.tick();
        await waitFor(async () => {
          const [row] = await kit.db.sql<{ attempts: number; locked: boolean }[]>`
            SELECT attempts, locked_until IS NOT NULL AS locked FROM notification_outbox
            WHERE route = 'done-slow'`;
          return row?.attempts === 1 && !row.locked ? row : undefined;
        }, "the first try failed");
        clock += 13 * 3_600_000;
        await notify.tick();
        await settled("done-slow", 1);
        clock += 12 * 3_600_000;
        const slow = await route("done-slow");
        assert.equal(slow?.dead, 1);
        assert.equal(slow?.last_delivered_at, null);
      } finally {
        await notify.stop();
        kit.receiver.answer = () => ({ status: 200 });
      }
    });

    test("migration 0008 counts events stored before it as planned, so an upgrade sends no history", async () => {
      const older = await target.open({ migrate: false });
      try {
        const all = await loadMigrations();
        // Every migration but the outbox's (0008, and 0012, 0019, 0024 and 0025 which change
        // it, and 0027 whose trigger is on 0025's table): the schema of a database that stored
        // alerts before notifications existed (the others are independent).
        await migrate(
          older.sql,
          all.filter((m) => ![8, 12, 19, 24, 25, 27].includes(m.version)),
        );
        const before = createBackendApp({ database: older });
        for (const alert of lifecycle(crypto.randomUUID(), undefined, "history-1")) {
          assert.equal((await before.request("/api/v1/alert", post(alert))).status, 201);
        }
        await migrate(older.sql, all);
        const notify = createNotificationDispatcher({
          database: older,
          config: parseNotifyConfig(
            JSON.stringify({ routes: [{ name: "history", webhook: hook("/history") }] }),
          ),
        });
        await notify.tick();
        await notify.stop();
        const [n] = await older.sql<{ n: number }[]>`
          SELECT count(*)::int AS n FROM incident_event WHERE notify_planned_at IS NULL`;
        assert.equal(n.n, 0);
        assert.equal((await older.sql`SELECT 1 FROM notification_outbox`).length, 0);
        assert.equal(kit.receiver.on("/history").length, 0);
      } finally {
        await older.dispose();
      }
    });

    test("Slack messages escape what the plant named, so a stream id cannot ping or link", async () => {
      const incident = crypto.randomUUID();
      await store(
        incidentAlert({
          incidentId: incident,
          streamId: "slack-1",
          event: "opened",
          sensors: [{ idx: 9, severity: 9, name: "<!channel> & <https://evil|click>" }],
        }),
      );
      const notify = createNotificationDispatcher({
        database: kit.db,
        config: parseNotifyConfig(
          JSON.stringify({
            console_url: "https://console.example/",
            routes: [
              anyAge({
                name: "slack",
                match: { stream: "slack-*" },
                webhook: hook("/slack", { format: "slack" }),
              }),
            ],
          }),
        ),
        pollMs: 20,
      });
      notify.start();
      await settled("slack", 1);
      await notify.stop();
      const body = JSON.parse(kit.receiver.on("/slack")[0].body);
      assert.equal(body.blocks[0].type, "section");
      assert.equal(body.blocks[0].text.type, "mrkdwn");
      assert.equal(body.blocks[0].text.text, body.text);
      assert.ok(body.text.includes("&lt;!channel&gt; &amp; &lt;https://evil|click&gt; (9)"));
      assert.ok(!body.text.includes("<!channel>"));
      assert.ok(
        body.text.includes(`<https://console.example/incidents/${incident}|Open in the console>`),
      );
    });
  });
}
