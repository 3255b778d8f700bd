// Backfilled data pages nobody: events older than a route's max_age are written stale, on PGlite and PostgreSQL.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createBackendApp } from "../app.ts";
import { testTargets } from "../db/_test_databases.ts";
import { incidentAlert } from "../incidents/_fixtures.ts";
import { deleteIncidentBatch } from "../retention/prune_queries.ts";
import { outboxKit } from "./_test_outbox.ts";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

for (const target of testTargets()) {
  describe(`the notification age gate on ${target.kind}`, () => {
    const kit = outboxKit(target);
    const { store, rows, settled, bodies, hook } = kit;
    /** One alert of incident `id` on `stream`, begun at `start`: its frame `afterMs` later. */
    const alert = (
      id: string,
      stream: string,
      start: number,
      event: "opened" | "updated" | "resolved",
      afterMs = 0,
      severity = 30,
    ) =>
      incidentAlert({
        incidentId: id,
        start: new Date(start).toISOString(),
        at: afterMs / 1000,
        streamId: stream,
        event,
        sensors: [{ idx: 7, severity }],
      });
    /** The types of what reached `path` about `incident`, answered 200. */
    const heard = (path: string, incident: string) =>
      bodies(path)
        .filter((b) => b.data.incident.incident_id === incident)
        .map((b) => b.type);
    const dispatcher = (routes: unknown[], now: () => number) => kit.dispatcher(routes, { now });

    test("a backfilled incident (opened, updated, resolved a week ago) pages nobody: its messages are stale, counted on the Health page", async () => {
      const clock = Date.parse("2026-12-07T12:00:00.000Z");
      const incident = crypto.randomUUID();
      const from = clock - 7 * DAY;
      await store(alert(incident, "backfill-1", from, "opened", 0, 20));
      await store(alert(incident, "backfill-1", from, "updated", MINUTE, 40));
      await store(alert(incident, "backfill-1", from, "resolved", 5 * MINUTE, 40));
      const notify = dispatcher(
        [
          { name: "pager", match: { stream: "backfill-*" }, webhook: hook("/pager") },
          // A route that asks for history hears it.
          {
            name: "archive",
            match: { stream: "backfill-*" },
            webhook: hook("/archive"),
            max_age: "30d",
          },
        ],
        () => clock,
      );
      try {
        notify.start();
        await settled("archive", incident, 3);
        assert.deepEqual(await rows("pager", incident), [
          ["opened", "stale"],
          ["updated", "stale"],
          ["resolved", "stale"],
        ]);
        const [{ undone }] = await kit.db.sql<{ undone: number }[]>`
          SELECT count(*)::int AS undone FROM notification_outbox
          WHERE incident_id = ${incident} AND route = 'pager' AND done_at IS NULL`;
        assert.equal(undone, 0, "a stale message is done at once");
        assert.deepEqual(heard("/pager", incident), []);
        assert.deepEqual(heard("/archive", incident), [
          "incident.opened",
          "incident.updated",
          "incident.resolved",
        ]);

        const page = await (
          await createBackendApp({ database: kit.db, notifications: notify }).request("/status")
        ).text();
        assert.match(
          page,
          /<th scope="col"><abbr title="Events older than [^"]*max_age[^"]*">Stale<\/abbr><\/th>/,
        );
        const pager = /<tr data-route="pager"[^>]*>([\s\S]*?)<\/tr>/.exec(page)?.[1] ?? "";
        const counts = [...pager.matchAll(/<td class="num">(\d+)<\/td>/g)].map((m) => m[1]);
        // Pending, delivered, dead, silenced, stale, superseded.
        assert.deepEqual(counts, ["0", "0", "0", "0", "3", "0"]);
      } finally {
        await notify.stop();
      }
    });

    test("an incident two hours old is stale on a route with max_age 1h and sent on one with the default (24h)", async () => {
      let clock = Date.parse("2026-12-07T12:00:00.000Z");
      const incident = crypto.randomUUID();
      const start = clock - 2 * HOUR;
      await store(alert(incident, "late-1", start, "opened"));
      const notify = dispatcher(
        [
          { name: "short", match: { stream: "late-*" }, webhook: hook("/short"), max_age: "1h" },
          { name: "default", match: { stream: "late-*" }, webhook: hook("/default") },
        ],
        () => clock,
      );
      try {
        await notify.tick();
        await settled("default", incident, 1);
        assert.deepEqual(await rows("short", incident), [["opened", "stale"]]);
        assert.deepEqual(await rows("default", incident), [["opened", "delivered"]]);
        // Its end a minute on is fresh: the route that heard nothing learns it happened and ended.
        clock += MINUTE;
        await store(alert(incident, "late-1", start, "resolved", 2 * HOUR));
        await notify.tick();
        await settled("short", incident, 2);
        await settled("default", incident, 2);
      } finally {
        await notify.stop();
      }
      assert.deepEqual(heard("/short", incident), ["incident.resolved"]);
      assert.deepEqual(heard("/default", incident), ["incident.opened", "incident.resolved"]);
    });

    test("a route told an incident opened hears its end however late, though its updates meanwhile are stale", async () => {
      let clock = Date.parse("2026-12-07T12:00:00.000Z");
      const incident = crypto.randomUUID();
      const opened = clock - 10 * MINUTE;
      await store(alert(incident, "outage-1", opened, "opened", 0, 20));
      const notify = dispatcher(
        [{ name: "told", match: { stream: "outage-*" }, webhook: hook("/told"), max_age: "1h" }],
        () => clock,
      );
      try {
        await notify.tick();
        await settled("told", incident, 1);
        // The backend was away three hours; what came meanwhile is planned on its return.
        clock += 3 * HOUR;
        await store(alert(incident, "outage-1", opened, "updated", MINUTE, 40));
        await store(alert(incident, "outage-1", opened, "resolved", 5 * MINUTE, 40));
        await notify.tick();
        await settled("told", incident, 3);
      } finally {
        await notify.stop();
      }
      assert.deepEqual(await rows("told", incident), [
        ["opened", "delivered"],
        ["updated", "stale"],
        ["resolved", "delivered"],
      ]);
      assert.deepEqual(heard("/told", incident), ["incident.opened", "incident.resolved"]);
    });

    test("an incident whose opening was stale is announced by its next fresh update, planned with it or later, whatever its severity", async () => {
      let clock = Date.parse("2026-12-07T12:00:00.000Z");
      const [backlog, later] = [crypto.randomUUID(), crypto.randomUUID()];
      const notify = dispatcher(
        [
          {
            name: "announce",
            match: { stream: "stale-open-*" },
            webhook: hook("/announce"),
            repeat_every: "1h",
          },
        ],
        () => clock,
      );
      try {
        // A backlog planned in one pass: an opening two days old, an update a minute old.
        const start = clock - 2 * DAY;
        await store(alert(backlog, "stale-open-1", start, "opened", 0, 40));
        await store(alert(backlog, "stale-open-1", start, "updated", 2 * DAY - MINUTE, 20));
        // The same over two passes, with a reminder period between them.
        await store(alert(later, "stale-open-2", start, "opened", 0, 40));
        await notify.tick();
        await settled("announce", backlog, 2);
        await settled("announce", later, 1);
        assert.deepEqual(await rows("announce", backlog), [
          ["opened", "stale"],
          ["updated", "delivered"],
        ]);
        clock += HOUR + MINUTE;
        await notify.tick();
        assert.deepEqual(
          await rows("announce", later),
          [["opened", "stale"]],
          "nothing to remind of",
        );
        await store(alert(later, "stale-open-2", start, "updated", clock - MINUTE - start, 20));
        await notify.tick();
        await settled("announce", later, 2);
        // Reminders count from the update, the first message the route was told.
        clock += HOUR + MINUTE;
        await notify.tick();
        await settled("announce", later, 3);
        clock += MINUTE;
        await store(alert(later, "stale-open-2", start, "resolved", clock - MINUTE - start, 20));
        await notify.tick();
        await settled("announce", later, 4);
      } finally {
        await notify.stop();
      }
      assert.deepEqual(await rows("announce", later), [
        ["opened", "stale"],
        ["updated", "delivered"],
        ["still_open", "delivered"],
        ["resolved", "delivered"],
      ]);
      assert.deepEqual(heard("/announce", later), [
        "incident.updated",
        "incident.still_open",
        "incident.resolved",
      ]);
    });

    test("a reminder planned more than max_age after it fell due is stale", async () => {
      let clock = Date.parse("2026-12-07T12:00:00.000Z");
      const incident = crypto.randomUUID();
      await store(alert(incident, "remind-late-1", clock - MINUTE, "opened"));
      const routes = [
        {
          name: "remind",
          match: { stream: "remind-late-*" },
          webhook: hook("/remind"),
          repeat_every: "2d",
          max_age: "1h",
        },
      ];
      const notify = dispatcher(routes, () => clock);
      try {
        await notify.tick();
        await settled("remind", incident, 1);
        // The backend was away two hours past the reminder's time.
        clock += 2 * DAY + 2 * HOUR;
        await notify.tick();
        await settled("remind", incident, 2);
      } finally {
        await notify.stop();
      }
      assert.deepEqual(await rows("remind", incident), [
        ["opened", "delivered"],
        ["still_open", "stale"],
      ]);
    });

    test("the opening after a silence that ended a week ago over a backfilled incident is stale", async () => {
      const clock = Date.parse("2026-12-07T12:00:00.000Z");
      const from = clock - 8 * DAY;
      const silenceId = crypto.randomUUID();
      // Stored as the API would, at times of our choosing (the API wants a future end).
      await kit.db.sql`
        INSERT INTO silence (silence_id, stream_glob, sensor_globs, starts_at, ends_at, reason,
          created_by, created_at)
        VALUES (${silenceId}, 'hushed-old-1', '{}'::text[], ${new Date(from)},
          ${new Date(from + DAY)}, 'pump swap', 'Ana', ${new Date(from)})`;
      const incident = crypto.randomUUID();
      await store(alert(incident, "hushed-old-1", from, "opened", MINUTE));
      const notify = dispatcher(
        [{ name: "hushed", match: { stream: "hushed-old-*" }, webhook: hook("/hushed") }],
        () => clock,
      );
      try {
        await notify.tick();
        await settled("hushed", incident, 2);
        await notify.tick();
      } finally {
        await notify.stop();
      }
      assert.deepEqual(await rows("hushed", incident), [
        ["opened", "silenced"],
        ["opened", "stale"],
      ]);
      assert.deepEqual(heard("/hushed", incident), []);
    });

    test("retention deletes stale messages with their incident", async () => {
      const clock = Date.parse("2026-12-07T12:00:00.000Z");
      const incident = crypto.randomUUID();
      await store(alert(incident, "pruned-1", clock - 400 * DAY, "opened"));
      await store(alert(incident, "pruned-1", clock - 400 * DAY, "resolved", MINUTE));
      const notify = dispatcher(
        [{ name: "pruned", match: { stream: "pruned-*" }, webhook: hook("/pruned") }],
        () => clock,
      );
      try {
        await notify.tick();
      } finally {
        await notify.stop();
      }
      assert.deepEqual(await rows("pruned", incident), [
        ["opened", "stale"],
        ["resolved", "stale"],
      ]);
      // Every resolved incident stored before a minute from now: this one among them.
      await deleteIncidentBatch(kit.db.sql, new Date(Date.now() + MINUTE), 1000);
      const [{ n }] = await kit.db.sql<{ n: number }[]>`
        SELECT count(*)::int AS n FROM incident WHERE incident_id = ${incident}`;
      assert.equal(n, 0, "the incident is pruned");
      assert.deepEqual(await rows("pruned", incident), [], "and its stale messages with it");
    });
  });
}
