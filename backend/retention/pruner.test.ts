// The pruner on PGlite and PostgreSQL, with alerts posted while it runs.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ourAlert, post } from "../alerts/_fixtures.ts";
import { createBackendApp } from "../app.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";
import { lifecycle } from "../incidents/_fixtures.ts";
import { createFeedConditions } from "../notify/feed_conditions.ts";
import { CONDITION_END_OWED_MS, createOutboxRepository } from "../notify/outbox_repository.ts";
import { readDatabaseHealth } from "./database_health.ts";
import { deleteConditionBatch, PRUNED_TABLES } from "./prune_queries.ts";
import { createPruner, type PruneRun } from "./pruner.ts";

const DAY_S = 86_400;

for (const target of testTargets()) {
  describe(`retention on ${target.kind}`, () => {
    let db: TestDatabase;
    let app: ReturnType<typeof createBackendApp>;

    before(async () => {
      db = await target.open();
      app = createBackendApp({ database: db });
    });
    after(() => db.dispose());

    const store = async (alert: { alert_id: string }) => {
      const res = await app.request("/api/v1/alert", post(alert));
      assert.equal(res.status, 201, await res.text());
      return alert.alert_id;
    };
    const storeAll = async (alerts: { alert_id: string }[]) => {
      const ids: string[] = [];
      for (const a of alerts) ids.push(await store(a));
      return ids;
    };
    /** Time passes: every row the pruner judges by gets `days` older. */
    const age = async (days: number) => {
      const by = days * DAY_S;
      await db.sql`UPDATE alert SET received_at = received_at - make_interval(secs => ${by})`;
      await db.sql`
        UPDATE incident SET started_at = started_at - make_interval(secs => ${by}),
          last_alert_at = last_alert_at - make_interval(secs => ${by}),
          resolved_at = resolved_at - make_interval(secs => ${by}),
          stored_at = stored_at - make_interval(secs => ${by})`;
    };
    /** What the notifier does with every stored event. */
    const planned = () =>
      db.sql`UPDATE incident_event SET notify_planned_at = now() WHERE notify_planned_at IS NULL`;
    const count = async (table: string, where = db.sql`true`) =>
      (
        await db.sql<
          { n: number }[]
        >`SELECT count(*)::int AS n FROM ${db.sql(table)} WHERE ${where}`
      )[0].n;
    /** Rows per table outside the pruner's, the audit trail and silences among them. */
    const othersRows = async () => {
      const tables = await db.sql<{ name: string }[]>`
        SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = current_schema() AND c.relkind = 'r' ORDER BY 1`;
      const skip = new Set<string>([...PRUNED_TABLES, "retention_status"]);
      const out: Record<string, number> = {};
      for (const { name } of tables) if (!skip.has(name)) out[name] = await count(name);
      return out;
    };
    const outbox = (incidentId: string, state: string) => db.sql`
      INSERT INTO notification_outbox (message_id, route, event_key, incident_id, event, event_at,
        body, state, created_at, next_attempt_at)
      VALUES (${crypto.randomUUID()}, 'ops', ${crypto.randomUUID()}, ${incidentId}, 'resolved',
        now(), '{}', ${state}, now(), now())`;
    const verdict = (incidentId: string) => db.sql`
      INSERT INTO incident_verdict (incident_id, verdict, given_by, given_at)
      VALUES (${incidentId}, 'true_positive', 'Test', now())`;

    test("the pruner keeps an incident with a verdict or an acknowledgement, however old, while its alerts go by their horizon", async () => {
      const start = new Date().toISOString();
      const [judged, acked, plain] = Array.from({ length: 3 }, () => crypto.randomUUID());
      for (const id of [judged, acked, plain]) await storeAll(lifecycle(id, start));
      await planned();
      const act = async (id: string, action: string, body: object, status = 201) => {
        const res = await app.request(`/api/v1/incidents/${id}/${action}`, post(body));
        assert.equal(res.status, status, await res.text());
      };
      await act(judged, "verdict", { verdict: "false_positive", by: "Ana" });
      // A changed verdict supersedes the first; both are kept.
      await act(judged, "verdict", { verdict: "maintenance", by: "Bo" }, 200);
      await act(acked, "ack", { by: "Ana", note: "looking" });
      await age(400);
      const records = async () => ({
        verdicts: await count("incident_verdict", db.sql`incident_id = ${judged}`),
        acks: await count("incident_ack", db.sql`incident_id = ${acked}`),
      });
      const recordsBefore = await records();

      const pruner = createPruner({
        database: db,
        alertsDays: 30,
        incidentsDays: 365,
        everyMs: 60_000,
        batchSize: 1,
      });
      const run = await pruner.runOnce();

      assert.equal(run.error, null);
      // Only the incident nobody acted on goes; all nine alerts go by their own horizon.
      assert.equal(run.incidents, 1);
      assert.equal(run.alerts, 9);
      assert.equal(await count("incident", db.sql`incident_id = ${plain}`), 0);
      for (const id of [judged, acked]) {
        assert.equal(await count("incident", db.sql`incident_id = ${id}`), 1, id);
        assert.equal(await count("incident_event", db.sql`incident_id = ${id}`), 3, id);
        assert.equal(await count("incident_sensor", db.sql`incident_id = ${id}`), 2, id);
        assert.equal(await count("alert", db.sql`incident_id = ${id}`), 0, id);
      }
      assert.deepEqual(await records(), { verdicts: 2, acks: 1 });
      assert.deepEqual(await records(), recordsBefore);
      // The page of the judged incident reads with its verdict history; a later run keeps it too.
      const page = await app.request(`/api/v1/incidents/${judged}`);
      assert.equal(page.status, 200);
      const detail = (await page.json()) as { verdict: { verdict: string }; verdicts: unknown[] };
      assert.equal(detail.verdict.verdict, "maintenance");
      assert.equal(detail.verdicts.length, 2);
      assert.equal((await pruner.runOnce()).incidents, 0);
    });

    test("the pruner deletes old alerts and resolved incidents, keeping recent ones, open incidents, pending notifications and everything else, while alerts arrive", async () => {
      const start = new Date().toISOString();
      const oldAlerts = await storeAll(Array.from({ length: 7 }, () => ourAlert()));
      const [resolved, open, pending, unplanned] = Array.from({ length: 4 }, () =>
        crypto.randomUUID(),
      );
      await storeAll(lifecycle(resolved, start));
      await storeAll(lifecycle(open, start).slice(0, 2));
      await storeAll(lifecycle(pending, start));
      await planned();
      await storeAll(lifecycle(unplanned, start));
      await verdict(open);
      await outbox(resolved, "delivered");
      await outbox(resolved, "dead");
      await outbox(pending, "pending");
      await db.sql`
        INSERT INTO silence (silence_id, stream_glob, starts_at, ends_at, reason, created_by,
          created_at)
        VALUES (${crypto.randomUUID()}, 'line-*', now(), now() + interval '1 hour', 'service',
          'Test', now())`;
      await age(400);
      // A late delivery of the resolved incident's update: it goes with its incident.
      const late = await store(lifecycle(resolved, start)[1]);
      await db.sql`UPDATE incident_event SET notify_planned_at = now() WHERE alert_id = ${late}`;
      const othersBefore = await othersRows();

      const pruner = createPruner({
        database: db,
        alertsDays: 30,
        incidentsDays: 365,
        everyMs: 60_000,
        batchSize: 2,
      });
      const freshStart = new Date().toISOString();
      const fresh = crypto.randomUUID();
      const [run, freshIds] = await Promise.all([
        pruner.runOnce(),
        storeAll([
          ...Array.from({ length: 6 }, () => ourAlert()),
          ...lifecycle(fresh, freshStart),
          ...Array.from({ length: 4 }, () => ourAlert()),
        ]),
      ]);

      assert.equal(run.error, null);
      // Every old alert (7 plain, 3 + 2 + 3 + 3 of incidents) with its features, and the late
      // one with its incident; none of the new.
      assert.equal(run.alerts, 18 + 1);
      assert.equal(run.alert_features, 7 * 2 + 5 + 3 + 5 + 5 + 2);
      assert.equal(await count("alert", db.sql`alert_id = ${late}`), 0);
      assert.equal(await count("alert", db.sql`alert_id IN ${db.sql(oldAlerts)}`), 0);
      assert.equal(await count("alert_feature", db.sql`alert_id IN ${db.sql(oldAlerts)}`), 0);
      assert.equal(
        await count("alert", db.sql`incident_id IS NOT NULL AND incident_id <> ${fresh}`),
        0,
      );
      assert.equal(await count("alert", db.sql`alert_id IN ${db.sql(freshIds)}`), freshIds.length);
      assert.equal(
        await count("alert_feature", db.sql`alert_id IN ${db.sql(freshIds)}`),
        10 * 2 + 5,
      );

      // The resolved incident went with its timeline, sensors, delivered message and dead letter
      // (kept as long as its incident, not for ever: a receiver that stays broken must not grow
      // the outbox without bound).
      assert.equal(run.incidents, 1);
      assert.equal(run.notifications, 2);
      for (const table of [
        "incident",
        "incident_event",
        "incident_sensor",
        "notification_outbox",
      ]) {
        assert.equal(await count(table, db.sql`incident_id = ${resolved}`), 0, table);
      }
      // Open, waiting on a notification, not yet planned, or recent: kept whole but for alerts.
      for (const id of [open, pending, unplanned, fresh]) {
        assert.equal(await count("incident", db.sql`incident_id = ${id}`), 1, id);
        assert.ok((await count("incident_event", db.sql`incident_id = ${id}`)) >= 2, id);
        assert.ok((await count("incident_sensor", db.sql`incident_id = ${id}`)) >= 1, id);
      }
      assert.equal(await count("incident_verdict", db.sql`incident_id = ${open}`), 1);
      assert.equal(await count("notification_outbox", db.sql`incident_id = ${pending}`), 1);
      // The summary page of an incident whose alerts are gone still reads.
      const page = await app.request(`/api/v1/incidents/${open}`);
      assert.equal(page.status, 200);
      assert.equal(((await page.json()) as { timeline: unknown[] }).timeline.length, 2);

      assert.deepEqual(await othersRows(), othersBefore);
      assert.ok(Object.keys(othersBefore).includes("silence"));

      // What the Health page reads: the oldest rows kept and the run, with its horizons.
      const health = await readDatabaseHealth(db, AbortSignal.timeout(10_000));
      assert.equal(health.oldest_alert_at, run.oldest_alert_at);
      assert.ok(Date.parse(health.oldest_alert_at!) >= Date.parse(freshStart) - 1000);
      assert.equal(health.oldest_incident_at, run.oldest_incident_at);
      assert.ok(Date.parse(health.oldest_incident_at!) < Date.now() - 399 * DAY_S * 1000);
      assert.ok(health.size_bytes > 0 && health.tables_bytes > 0);
      // The largest tables, largest first (which ones depends on each table's indexes, whose
      // empty pages outweigh this test's few rows).
      assert.equal(health.largest.length, 5);
      for (const [i, t] of health.largest.entries()) {
        assert.ok(t.bytes > 0 && (i === 0 || health.largest[i - 1].bytes >= t.bytes), t.name);
        // A table of this database's own schema (another schema may hold one of the same name).
        const own = db.sql`relname = ${t.name} AND relkind = 'r' AND relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())`;
        assert.equal(await count("pg_class", own), 1, t.name);
      }
      assert.deepEqual(
        {
          ...health.last_prune,
          started_at: undefined,
          finished_at: undefined,
        },
        {
          alerts_days: 30,
          incidents_days: 365,
          every_s: 60,
          started_at: undefined,
          finished_at: undefined,
          alerts: 19,
          alert_features: run.alert_features,
          incidents: 1,
          notifications: 2,
          conditions: 0,
          error: null,
        },
      );
      assert.equal(pruner.status().last, run);

      // The rest go once nothing holds them: the pending message delivered, the events planned.
      await db.sql`UPDATE notification_outbox SET state = 'delivered' WHERE incident_id = ${pending}`;
      await planned();
      const again = await pruner.runOnce();
      assert.equal(again.incidents, 2);
      assert.equal(
        await count("incident", db.sql`incident_id IN ${db.sql([pending, unplanned])}`),
        0,
      );
    });

    /**
     * Feed conditions in a database of their own: an engine out of reach from `from` days ago,
     * reached again `to` days ago (null: still out of reach), each engine a condition.
     */
    const feedKit = async () => {
      const own = await target.open();
      const feed = createFeedConditions(own, { graceMs: 60_000 });
      const t = Date.now();
      const ago = (days: number) => new Date(t - days * DAY_S * 1000);
      const episode = async (from: number, to: number | null) => {
        const url = `http://engine-${crypto.randomUUID()}.test:8080`;
        const o = { reachable: false as const, since: ago(from), reason: "connection refused" };
        const [c] = (await feed.observe(url, o, ago(from))).opened;
        if (to !== null)
          assert.equal((await feed.observe(url, { reachable: true }, ago(to))).ended.length, 1);
        return c.condition_id;
      };
      const message = (conditionId: string, event: string, state: string) => own.sql`
        INSERT INTO notification_outbox (message_id, route, event_key, condition_id, event,
          event_at, body, state, created_at, next_attempt_at)
        VALUES (${crypto.randomUUID()}, 'ops', ${crypto.randomUUID()}, ${conditionId}, ${event},
          now(), '{}', ${state}, now(), now())`;
      const rows = async (table: string, where = own.sql`true`) =>
        (
          await own.sql<
            { n: number }[]
          >`SELECT count(*)::int AS n FROM ${own.sql(table)} WHERE ${where}`
        )[0].n;
      /** Which of `ids` are still stored, with how many messages each. */
      const kept = async (ids: Record<string, string>) => {
        const out: Record<string, [number, number]> = {};
        for (const [name, id] of Object.entries(ids)) {
          out[name] = [
            await rows("feed_condition", own.sql`condition_id = ${id}`),
            await rows("notification_outbox", own.sql`condition_id = ${id}`),
          ];
        }
        return out;
      };
      return { own, t, episode, message, rows, kept };
    };

    test("the pruner deletes ended feed conditions past the incidents' horizon and a week after their end, with their messages; keeps open ones, recent ends, those with a message pending, and all with retention off", async () => {
      const { own, t, episode, message, rows, kept } = await feedKit();
      try {
        const ids = {
          // Ended 10 days ago, every message done: goes with them, its dead letter too.
          old: await episode(30, 10),
          // Ended 8 days ago, never told anyone (no route matched).
          quiet: await episode(9, 8),
          // Past the 3-day horizon, but ended within the week: its end may still be owed.
          recent: await episode(20, 5),
          // Its end still pending: held back until sent.
          pending: await episode(30, 10),
          // Out of reach for 400 days and still: never while open.
          open: await episode(400, null),
        };
        for (const state of ["delivered", "silenced", "superseded"]) {
          await message(ids.old, "condition_opened", state);
        }
        await message(ids.old, "condition_resolved", "dead");
        await message(ids.old, "condition_resolved", "stale");
        await message(ids.recent, "condition_opened", "delivered");
        await message(ids.pending, "condition_opened", "delivered");
        await message(ids.pending, "condition_resolved", "pending");
        await message(ids.open, "condition_opened", "delivered");
        const engines = await rows("feed_engine");
        const everything = {
          old: [1, 5],
          quiet: [1, 0],
          recent: [1, 1],
          pending: [1, 2],
          open: [1, 1],
        };
        assert.deepEqual(await kept(ids), everything);

        // Retention off, or an incidents' horizon longer than their ends: nothing goes.
        for (const [alertsDays, incidentsDays] of [
          [0, 0],
          [1, 30],
        ]) {
          const pruner = createPruner({
            database: own,
            alertsDays,
            incidentsDays,
            everyMs: 60_000,
            batchSize: 1,
          });
          const run = await pruner.runOnce();
          assert.equal(run.error, null);
          assert.deepEqual(await kept(ids), everything, `incidentsDays ${incidentsDays}`);
          assert.equal(run.conditions, 0, `incidentsDays ${incidentsDays}`);
        }

        const pruner = createPruner({
          database: own,
          alertsDays: 1,
          incidentsDays: 3,
          everyMs: 60_000,
          batchSize: 1,
          now: () => t,
        });
        const run = await pruner.runOnce();
        assert.equal(run.error, null);
        assert.deepEqual(await kept(ids), {
          ...everything,
          old: [0, 0],
          quiet: [0, 0],
        });
        assert.equal(run.conditions, 2);
        assert.equal(run.notifications, 5);
        // One row per engine, left alone.
        assert.equal(await rows("feed_engine"), engines);
        const health = await readDatabaseHealth(own, AbortSignal.timeout(10_000));
        assert.equal(health.last_prune?.conditions, 2);
        assert.equal(health.last_prune?.notifications, 5);

        // Its end sent, the pending one goes on the next run; the recent one once its week is
        // over by the pruner's clock; the open one never.
        await own.sql`UPDATE notification_outbox SET state = 'delivered' WHERE condition_id = ${ids.pending}`;
        const next = await pruner.runOnce();
        assert.deepEqual([next.conditions, next.notifications], [1, 2]);
        const later = createPruner({
          database: own,
          alertsDays: 1,
          incidentsDays: 3,
          everyMs: 60_000,
          batchSize: 10,
          now: () => t + CONDITION_END_OWED_MS - 5 * DAY_S * 1000 + 60_000,
        });
        const last = await later.runOnce();
        assert.deepEqual([last.conditions, last.notifications], [1, 1]);
        assert.equal(
          (await readDatabaseHealth(own, AbortSignal.timeout(10_000))).last_prune?.conditions,
          1,
        );
        assert.deepEqual(await kept(ids), {
          old: [0, 0],
          quiet: [0, 0],
          recent: [0, 0],
          pending: [0, 0],
          open: [1, 1],
        });
      } finally {
        await own.dispose();
      }
    });

    test("deleteConditionBatch works inside a caller's transaction, which decides", async () => {
      const { own, episode, message, kept } = await feedKit();
      try {
        const ids = { gone: await episode(30, 10) };
        await message(ids.gone, "condition_resolved", "delivered");
        const before = new Date(Date.now() - 3 * DAY_S * 1000);
        await assert.rejects(
          own.sql.begin(async (tx) => {
            const b = await deleteConditionBatch(tx as never, before, 10);
            assert.deepEqual(b, { conditions: 1, notifications: 1 });
            throw new Error("rolled back");
          }),
          /rolled back/,
        );
        assert.deepEqual(await kept(ids), { gone: [1, 1] });
        await own.sql.begin((tx) => deleteConditionBatch(tx as never, before, 10));
        assert.deepEqual(await kept(ids), { gone: [0, 0] });
      } finally {
        await own.dispose();
      }
    });

    test("a condition's end planned after retention deleted the condition is not written: no message of no condition, which no prune would ever delete", async () => {
      const { own, episode, message, kept } = await feedKit();
      try {
        const ids = { gone: await episode(30, 10) };
        await message(ids.gone, "condition_opened", "delivered");
        // The dispatcher read the condition (its end owed) before this prune deleted it.
        const before = new Date(Date.now() - 3 * DAY_S * 1000);
        assert.deepEqual(await deleteConditionBatch(own.sql, before, 10), {
          conditions: 1,
          notifications: 1,
        });
        const outbox = createOutboxRepository(own);
        const inserted = await outbox.plan(
          [
            {
              message_id: crypto.randomUUID(),
              route: "ops",
              event_key: crypto.randomUUID(),
              incident_id: null,
              condition_id: ids.gone,
              event: "condition_resolved",
              event_at: new Date(),
              severity: 0,
              body: "{}",
              state: "pending",
            },
          ],
          [],
          new Date(),
        );
        assert.equal(inserted, 0);
        assert.deepEqual(await kept(ids), { gone: [0, 0] });
      } finally {
        await own.dispose();
      }
    });

    if (target.kind === "postgres") {
      test("a condition's dead letter re-sent while a batch judges it keeps its condition", async () => {
        const { own, episode, message, kept } = await feedKit();
        const resender = await own.reopen();
        try {
          const ids = { resent: await episode(30, 10) };
          await message(ids.resent, "condition_resolved", "dead");
          const before = new Date(Date.now() - 3 * DAY_S * 1000);
          // A re-send (dead → pending) in a transaction not yet committed when the batch starts.
          let commit = () => {};
          const committed = new Promise<void>((resolve) => {
            commit = resolve;
          });
          let resenderPid = 0;
          let resendStarted = () => {};
          const started = new Promise<void>((resolve) => {
            resendStarted = resolve;
          });
          const resend = resender.sql.begin(async (tx) => {
            [{ pid: resenderPid }] = await tx<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`;
            await tx`UPDATE notification_outbox SET state = 'pending' WHERE condition_id = ${ids.resent}`;
            resendStarted();
            await committed;
          });
          await started;
          const batch = deleteConditionBatch(own.sql, before, 10);
          // The batch waits on the re-sent row; then the re-send commits.
          const deadline = AbortSignal.timeout(20_000);
          for (;;) {
            const [{ n }] = await resender.sql<{ n: number }[]>`
              SELECT count(*)::int AS n FROM pg_stat_activity
              WHERE ${resenderPid}::int = ANY(pg_blocking_pids(pid))`;
            if (n > 0) break;
            assert.ok(!deadline.aborted, "the batch never waited on the re-sent row");
            await new Promise((resolve) => setImmediate(resolve));
          }
          commit();
          await resend;
          assert.deepEqual(await batch, { conditions: 0, notifications: 0 });
          assert.deepEqual(await kept(ids), { resent: [1, 1] });
        } finally {
          await resender.close();
          await own.dispose();
        }
      });
    }

    test("the tables stop growing once their rows reach the horizon, with alerts posted during every prune", async () => {
      // Empty tables to start from: a database of its own (the earlier tests' verdicts and
      // acknowledgements cannot be deleted, and keep their incidents).
      await db.dispose();
      db = await target.open();
      app = createBackendApp({ database: db });
      const pruner = createPruner({
        database: db,
        alertsDays: 3,
        incidentsDays: 5,
        everyMs: 60_000,
        batchSize: 3,
      });
      // Each round is a day: 4 plain alerts and one incident's 3 arrive while the pruner runs.
      const rows: Record<string, number>[] = [];
      for (let round = 0; round < 9; round++) {
        const incident = crypto.randomUUID();
        // Resolved a minute ago, so five rounds later it is past the horizon however fast they ran.
        const start = new Date(Date.now() - 60_000).toISOString();
        const [run] = await Promise.all([
          pruner.runOnce(),
          storeAll([ourAlert(), ...lifecycle(incident, start), ourAlert(), ourAlert(), ourAlert()]),
        ]);
        assert.equal(run.error, null);
        await planned();
        rows.push({
          alert: await count("alert"),
          alert_feature: await count("alert_feature"),
          incident: await count("incident"),
          incident_event: await count("incident_event"),
        });
        await age(1);
      }
      // Alerts of the last 3 days (this one's and two before), incidents of the last 5.
      const steady = {
        alert: 21,
        alert_feature: 3 * (4 * 2 + 1 + 2 + 2),
        incident: 5,
        incident_event: 15,
      };
      assert.deepEqual(rows.slice(4), Array(5).fill(steady));
      assert.ok(rows.every((r) => r.alert <= steady.alert && r.incident <= steady.incident));
    });

    test("start() prunes at once and every everyMs after, until stop()", {
      timeout: 60_000,
    }, async () => {
      const runs: PruneRun[] = [];
      let thirdRun = () => {};
      const third = new Promise<void>((resolve) => {
        thirdRun = resolve;
      });
      const pruner = createPruner({
        database: db,
        alertsDays: 1,
        incidentsDays: 1,
        everyMs: 20,
        batchSize: 100,
        onRun: (run) => {
          runs.push(run);
          if (runs.length === 3) thirdRun();
        },
      });
      pruner.start();
      await third;
      await pruner.stop(AbortSignal.timeout(30_000));
      const after = runs.length;
      assert.deepEqual(pruner.status(), { running: false, last: runs.at(-1) });
      // Stopped means stopped: no run starts after stop() resolved.
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(runs.length, after);
    });

    test("a run gives the planner statistics on the pruned tables, also when it deletes nothing", async () => {
      const own = await target.open();
      try {
        const ownApp = createBackendApp({ database: own });
        for (let i = 0; i < 5; i++) {
          const res = await ownApp.request("/api/v1/alert", post(ourAlert()));
          assert.equal(res.status, 201, await res.text());
        }
        const stats = async (table: string) =>
          (
            await own.sql<{ n: number }[]>`
              SELECT count(*)::int AS n FROM pg_stats WHERE tablename = ${table}`
          )[0].n;
        if (target.kind === "pglite") assert.equal(await stats("alert"), 0, "no autoanalyze");
        const run = await createPruner({
          database: own,
          alertsDays: 30,
          incidentsDays: 365,
          everyMs: 60_000,
          batchSize: 10,
        }).runOnce();
        assert.equal(run.error, null);
        assert.equal(run.alerts, 0);
        if (target.kind === "pglite") {
          assert.ok((await stats("alert")) > 0);
          assert.ok((await stats("alert_feature")) > 0);
        }
        assert.equal(run.maintenance, target.kind === "pglite" ? "analyze" : null);
      } finally {
        await own.dispose();
      }
    });

    test("PGlite's upkeep: a run analyzes at most hourly, and deleting one alert vacuums nothing", async () => {
      const own = await target.open();
      try {
        let clock = Date.now();
        const ownApp = createBackendApp({ database: own });
        const res = await ownApp.request("/api/v1/alert", post(ourAlert()));
        assert.equal(res.status, 201, await res.text());
        const pruner = createPruner({
          database: own,
          alertsDays: 30,
          incidentsDays: 365,
          everyMs: 60_000,
          batchSize: 10,
          now: () => clock,
        });
        const pglite = target.kind === "pglite";
        assert.equal((await pruner.runOnce()).maintenance, pglite ? "analyze" : null);
        clock += 5 * 60_000;
        assert.equal(
          (await pruner.runOnce()).maintenance,
          null,
          "nothing deleted, analyzed 5 min ago",
        );
        clock += 31 * 86_400_000;
        const pruned = await pruner.runOnce();
        assert.equal(pruned.alerts, 1);
        // One dead row is far below autovacuum's threshold (pruner_upkeep.test.ts); the hour is up.
        assert.equal(pruned.maintenance, pglite ? "analyze" : null);
        assert.deepEqual(pruned.vacuumed, []);
        clock += 30 * 60_000;
        assert.equal((await pruner.runOnce()).maintenance, null);
        clock += 31 * 60_000;
        assert.equal((await pruner.runOnce()).maintenance, pglite ? "analyze" : null, "an hour on");
      } finally {
        await own.dispose();
      }
    });
  });
}

test("the pruner refuses horizons where incidents would go before their alerts", () => {
  const database = { kind: "pglite", sql: undefined } as never;
  const options = { database, everyMs: 1000, batchSize: 10 };
  assert.throws(
    () => createPruner({ ...options, alertsDays: 30, incidentsDays: 7 }),
    /'incidentsDays' must be 0 or at least 'alertsDays' \(30\), got 7/,
  );
  assert.throws(() => createPruner({ ...options, alertsDays: 0, incidentsDays: 7 }), RangeError);
  assert.throws(
    () => createPruner({ ...options, alertsDays: 1, incidentsDays: 1, batchSize: 0 }),
    /'batchSize' must be a positive integer, got 0/,
  );
  assert.ok(createPruner({ ...options, alertsDays: 30, incidentsDays: 0 }));
});
