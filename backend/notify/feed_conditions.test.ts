// Feed conditions as episodes (opened once, ended once, a moved `since` a new one) and their messages: which routes, silences, an opening never tried superseded by the end (PGlite and PostgreSQL).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { holdTransaction, untilSomeoneWaitsOnALock } from "../_test/held_transaction.ts";
import { waitFor } from "../_test/spawn_service.ts";
import { createBackendApp } from "../app.ts";
import { testTargets } from "../db/_test_databases.ts";
import { createRetirementRepository } from "../streams/retirement_repository.ts";
import { outboxKit } from "./_test_outbox.ts";
import {
  createFeedConditions,
  type FeedConditions,
  type FeedObservation,
  SILENT_LISTED_MAX,
} from "./feed_conditions.ts";

const ENGINE = "http://127.0.0.1:9000";
const DARK_1 = `msg_${"d1".repeat(16)}`;
const DARK_2 = `msg_${"d2".repeat(16)}`;
const at = (s: number) => new Date(Date.UTC(2026, 11, 7, 8) + s * 1000);
const silent = (...streams: [string, number][]): FeedObservation => ({
  reachable: true,
  silent: streams.map(([stream_id, s]) => ({ stream_id, last_accepted_at: at(s).toISOString() })),
});

for (const target of testTargets()) {
  describe(`feed conditions on ${target.kind}`, () => {
    const kit = outboxKit(target);

    /** Records `stream` as silent since 5 s before `t`; resolves with its episode. */
    async function silentSince(feed: FeedConditions, stream: string, t: number) {
      const last = new Date(t - 5000).toISOString();
      const changes = await feed.observe(
        ENGINE,
        { reachable: true, silent: [{ stream_id: stream, last_accepted_at: last }] },
        new Date(t),
      );
      return changes.opened[0];
    }

    /** `kind subject since ended?` of every episode, in order of opening. */
    async function episodes() {
      const rows = await kit.db.sql<
        { kind: string; subject: string; since: Date; ended_at: Date | null }[]
      >`SELECT kind, subject, since, ended_at FROM feed_condition ORDER BY opened_at, since, subject`;
      return rows.map(
        (r) => `${r.kind} ${r.subject} ${r.since.toISOString()}${r.ended_at ? " ended" : ""}`,
      );
    }

    test("a read opens what it shows once, ends what it no longer shows, and a since that moved on is a new episode; one that moved back (a forgetful restart) is the same", async () => {
      await kit.db.sql`DELETE FROM feed_condition`;
      const feed = createFeedConditions(kit.db, { graceMs: 0 });
      const first = await feed.observe(ENGINE, silent(["a", 0], ["b", 0]), at(10));
      assert.deepEqual(first.opened.map((c) => c.subject).sort(), ["a", "b"]);
      // The same read again, from a second backend: nothing new.
      const again = createFeedConditions(kit.db, { graceMs: 0 });
      assert.deepEqual(await again.observe(ENGINE, silent(["a", 0], ["b", 0]), at(11)), {
        opened: [],
        ended: [],
      });
      // b moved back (an engine that lost its last seconds), a moved on (sent, then silent again).
      const moved = await feed.observe(ENGINE, silent(["a", 20], ["b", -2]), at(30));
      assert.deepEqual(
        moved.ended.map((c) => c.subject),
        ["a"],
      );
      assert.deepEqual(
        moved.opened.map((c) => c.subject),
        ["a"],
      );
      // b sends again: not listed, ended; the engine saying nothing of silence ends nothing.
      assert.deepEqual(
        (await feed.observe(ENGINE, silent(["a", 20]), at(40))).ended.map((c) => c.subject),
        ["b"],
      );
      assert.deepEqual(await feed.observe(ENGINE, { reachable: true }, at(50)), {
        opened: [],
        ended: [],
      });
      assert.deepEqual(await episodes(), [
        `stream_silent a ${at(0).toISOString()} ended`,
        `stream_silent b ${at(0).toISOString()} ended`,
        `stream_silent a ${at(20).toISOString()}`,
      ]);
    });

    test("a full list (the engine lists at most 256) ends only what moved on; the engine out of reach is one episode whoever saw it first, ended by its next answer", async () => {
      await kit.db.sql`DELETE FROM feed_condition`;
      const feed = createFeedConditions(kit.db, { graceMs: 0 });
      await feed.observe(ENGINE, silent(["old", 0]), at(1));
      const full = Array.from({ length: SILENT_LISTED_MAX }, (_, i): [string, number] => [
        `s-${i}`,
        2,
      ]);
      const changes = await feed.observe(ENGINE, silent(...full), at(3));
      assert.equal(changes.opened.length, SILENT_LISTED_MAX);
      assert.deepEqual(changes.ended, [], "old may be beyond the list: not ended on its word");
      const down = (since: number): FeedObservation => ({
        reachable: false,
        since: at(since),
        reason: "connection refused (ECONNREFUSED)",
      });
      assert.equal((await feed.observe(ENGINE, down(60), at(120))).opened.length, 1);
      assert.equal((await feed.observe(ENGINE, down(61), at(121))).opened.length, 0);
      const back = await feed.observe(ENGINE, { reachable: true }, at(130));
      assert.deepEqual(
        back.ended.map((c) => c.kind),
        ["engine_unreachable"],
      );
      assert.equal(await feed.engineKnown(), true);
    });

    test("routes: kind feed or none, no severity minimum, the stream glob (the engine's concerns all); a silence over the stream holds its opening back (one over a sensor does not); an end waits behind an opening tried; the end goes to those told", async () => {
      await kit.db.sql`DELETE FROM feed_condition`;
      const feed = createFeedConditions(kit.db, { graceMs: 0 });
      // Held until the test lets it answer: the opening of `quick` is never tried.
      let open = false;
      kit.receiver.answer = (r) =>
        r.path === "/held" && !open ? { status: 503 } : { status: 200 };
      const notify = kit.dispatcher([
        { name: "feed", match: { kind: "feed" }, webhook: kit.hook("/feed") },
        { name: "lines", match: { stream: "line-*" }, webhook: kit.hook("/lines") },
        { name: "pager", match: { min_severity: 1 }, webhook: kit.hook("/pager") },
        { name: "process", match: { kind: "process" }, webhook: kit.hook("/process") },
        {
          name: "held",
          match: { stream: "quick" },
          webhook: kit.hook("/held"),
          concurrency: 1,
          retry: { attempts: 5, initial: "1h", max: "1h" },
        },
      ]);
      const silences = await kit.app.request("/api/v1/silences", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          matchers: { stream: "line-held" },
          ends_at: new Date(Date.now() + 3_600_000).toISOString(),
          reason: "planned stop",
          created_by: "Ana",
        }),
      });
      assert.equal(silences.status, 201, await silences.text());
      // A sensor-scoped silence does not cover a whole stream gone silent.
      const sensorOnly = await kit.app.request("/api/v1/silences", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          matchers: { stream: "line-1", sensors: ["TT-101"] },
          ends_at: new Date(Date.now() + 3_600_000).toISOString(),
          reason: "thermocouple swap",
          created_by: "Ana",
        }),
      });
      assert.equal(sensorOnly.status, 201, await sensorOnly.text());
      const t = Date.now();
      await feed.observe(
        ENGINE,
        {
          reachable: true,
          silent: [
            { stream_id: "line-1", last_accepted_at: new Date(t - 60_000).toISOString() },
            { stream_id: "line-held", last_accepted_at: new Date(t - 60_000).toISOString() },
            { stream_id: "quick", last_accepted_at: new Date(t - 60_000).toISOString() },
          ],
        },
        new Date(t),
      );
      notify.start();
      try {
        const types = (path: string) =>
          kit.receiver
            .on(path)
            .map((r) => JSON.parse(r.body))
            .map((b) => `${b.type} ${b.data.condition.stream_id}`);
        await waitFor(
          async () =>
            types("/feed").length === 2 && types("/lines").length === 1 ? true : undefined,
          "the openings",
        );
        assert.deepEqual(types("/feed").sort(), [
          "condition.opened line-1",
          "condition.opened quick",
        ]);
        assert.deepEqual(types("/lines"), ["condition.opened line-1"]);
        await waitFor(
          async () => (kit.receiver.on("/held").length === 1 ? true : undefined),
          "tried",
        );
        // quick's end: its opening to `held` was tried (refused), so it may have arrived: its
        // end follows once `held` answers. line-1's end goes to both routes told.
        await feed.observe(
          ENGINE,
          {
            reachable: true,
            silent: [
              { stream_id: "line-held", last_accepted_at: new Date(t - 60_000).toISOString() },
            ],
          },
          new Date(t + 1000),
        );
        await waitFor(
          async () =>
            types("/feed").length === 4 && types("/lines").length === 2 ? true : undefined,
          "the ends",
        );
        assert.deepEqual(types("/lines"), ["condition.opened line-1", "condition.resolved line-1"]);
        assert.deepEqual(kit.receiver.on("/pager"), []);
        assert.deepEqual(kit.receiver.on("/process"), []);
        const held = await kit.db.sql<{ event: string; state: string }[]>`
          SELECT event, state FROM notification_outbox WHERE route = 'held' ORDER BY created_at`;
        assert.deepEqual(
          held.map((r) => `${r.event} ${r.state}`),
          ["condition_opened pending", "condition_resolved pending"],
          "the end waits behind the opening tried",
        );
        // Nothing about the silenced line, on any route.
        const aboutHeld = await kit.db.sql`
          SELECT 1 FROM notification_outbox o JOIN feed_condition c USING (condition_id)
          WHERE c.subject = 'line-held'`;
        assert.equal(aboutHeld.length, 0);
      } finally {
        open = true;
        await notify.stop();
      }
    });

    test("an opening never tried when its condition ends is superseded, and no end follows it", async () => {
      await kit.db.sql`DELETE FROM feed_condition`;
      const feed = createFeedConditions(kit.db, { graceMs: 0 });
      const t = Date.now();
      const opened = await silentSince(feed, "flicker", t);
      // Its opening planned by an earlier pass and still waiting, never tried (its route's
      // deliveries were busy), when the stream sends again.
      await kit.db.sql`
        INSERT INTO notification_outbox (message_id, route, event_key, condition_id, event,
          event_at, body, state, created_at, next_attempt_at)
        VALUES ('msg_flicker', 'flick', ${`condition/${opened.condition_id}/opened`},
          ${opened.condition_id}, 'condition_opened', ${opened.since}, '{}', 'pending',
          ${new Date(t)}, ${new Date(t)})`;
      await feed.observe(ENGINE, { reachable: true, silent: [] }, new Date(t + 10));
      const notify = kit.dispatcher([
        { name: "flick", match: { stream: "flicker" }, webhook: kit.hook("/flick") },
      ]);
      await notify.tick();
      await notify.stop();
      const rows = await kit.db.sql<{ event: string; state: string; last_error: string }[]>`
        SELECT event, state, last_error FROM notification_outbox
        WHERE condition_id = ${opened.condition_id}`;
      assert.deepEqual(
        rows.map((r) => ({ ...r })),
        [
          {
            event: "condition_opened",
            state: "superseded",
            last_error: "the condition ended before it was sent",
          },
        ],
      );
      assert.deepEqual(kit.receiver.on("/flick"), []);
    });

    test("a condition's dead letter: listed on the Health page as a feed condition, re-sent while it holds, kept dead once it ended", async () => {
      await kit.db.sql`DELETE FROM feed_condition`;
      const feed = createFeedConditions(kit.db, { graceMs: 0 });
      const t = Date.now();
      const opened = await silentSince(feed, "dark-1", t);
      const dead = async (id: string) => {
        await kit.db.sql`
          INSERT INTO notification_outbox (message_id, route, event_key, condition_id, event,
            event_at, body, state, attempts, created_at, next_attempt_at, last_attempt_at,
            done_at, last_status)
          VALUES (${id}, 'gone', ${`condition/${opened.condition_id}/opened/${id}`},
            ${opened.condition_id}, 'condition_opened', ${opened.since}, '{}', 'dead', 10,
            ${new Date(t)}, ${new Date(t)}, ${new Date(t)}, ${new Date(t)}, 500)`;
      };
      await dead(DARK_1);
      const withRoutes = createBackendApp({
        database: kit.db,
        notifications: kit.dispatcher([{ name: "gone", webhook: kit.hook("/gone") }]),
      });
      const page = await (await withRoutes.request("/status")).text();
      assert.match(page, new RegExp(`feed condition ${opened.condition_id.slice(0, 8)}`));
      const listed = (await (
        await kit.app.request("/api/v1/notifications?state=dead&route=gone")
      ).json()) as { notifications: { incident_id: string | null; condition_id: string }[] };
      assert.deepEqual(
        listed.notifications.map((n) => [n.incident_id, n.condition_id]),
        [[null, opened.condition_id]],
      );
      const retry = (id: string) =>
        kit.app.request(`/api/v1/notifications/${id}/retry`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ reason: "receiver back" }),
        });
      assert.equal((await retry(DARK_1)).status, 200);
      await dead(DARK_2);
      await feed.observe(ENGINE, { reachable: true, silent: [] }, new Date(t + 10));
      const refused = await retry(DARK_2);
      assert.equal(refused.status, 409);
      assert.match(
        ((await refused.json()) as { message: string }).message,
        /about a feed condition that has ended/,
      );
    });

    test("a doubt is one episode while its stream and sensor are shown, whatever its since (a restarted engine finds it again later); lists empty for less than the grace end nothing", async () => {
      await kit.db.sql`DELETE FROM feed_condition`;
      const feed = createFeedConditions(kit.db, { graceMs: 60_000 });
      const doubt = (since: number): FeedObservation => ({
        reachable: true,
        doubts: [
          {
            stream_id: "press-1",
            sensor: "drive_rpm",
            since: at(since).toISOString(),
            in_range: 0.9,
          },
        ],
        silent: [{ stream_id: "line-9", last_accepted_at: at(0).toISOString() }],
      });
      assert.equal((await feed.observe(ENGINE, doubt(0), at(10))).opened.length, 2);
      // The engine restarts: empty lists for a while, then the doubt again with a later since.
      const empty: FeedObservation = { reachable: true, doubts: [], silent: [] };
      assert.deepEqual(await feed.observe(ENGINE, empty, at(40)), { opened: [], ended: [] });
      assert.deepEqual(await feed.observe(ENGINE, doubt(45), at(50)), { opened: [], ended: [] });
      // Unseen for longer than the grace: over.
      assert.deepEqual(
        (await feed.observe(ENGINE, empty, at(200))).ended.map((c) => c.kind).sort(),
        ["running_sensor_doubt", "stream_silent"],
      );
    });

    test("a backend that cannot reach the engine opens nothing while another reached it since its failures began", async () => {
      await kit.db.sql`DELETE FROM feed_condition`;
      const a = createFeedConditions(kit.db, { graceMs: 0 });
      const b = createFeedConditions(kit.db, { graceMs: 0 });
      const url = "http://engine.test:9000";
      const down = (since: number): FeedObservation => ({
        reachable: false,
        since: at(since),
        reason: "no answer within 200 ms",
      });
      await a.observe(url, { reachable: true }, at(100));
      assert.deepEqual((await b.observe(url, down(90), at(160))).opened, [], "a reached it at 100");
      assert.deepEqual((await b.observe(url, down(90), at(175))).opened, []);
      // Nobody reaches it after 101: down.
      assert.equal((await b.observe(url, down(101), at(170))).opened.length, 1);
    });

    /** The retirement rows of `stream`: `ended_by end_reason` or `in force`, oldest first. */
    async function retirementsOf(stream: string) {
      const rows = await kit.db.sql<{ ended_by: string | null; end_reason: string | null }[]>`
        SELECT ended_by, end_reason FROM stream_retirement WHERE stream_id = ${stream}
        ORDER BY retired_at`;
      return rows.map((r) => (r.end_reason ? `${r.ended_by} ${r.end_reason}` : "in force"));
    }

    test("a retired silent stream opens nothing, and its open episode ends when it is retired: the route told of the opening hears the end", async () => {
      await kit.db.sql`DELETE FROM feed_condition`;
      const feed = createFeedConditions(kit.db, { graceMs: 0 });
      const t = Date.now();
      const notify = kit.dispatcher([
        { name: "retired", match: { stream: "retired-*" }, webhook: kit.hook("/retired") },
      ]);
      const types = () =>
        kit.receiver
          .on("/retired")
          .map((r) => JSON.parse(r.body))
          .map((b) => `${b.type} ${b.data.condition.stream_id}`);
      const lines = (...ids: string[]): FeedObservation => ({
        reachable: true,
        silent: ids.map((stream_id) => ({
          stream_id,
          last_accepted_at: new Date(t - 60_000).toISOString(),
        })),
      });
      await feed.observe(ENGINE, lines("retired-told"), new Date(t));
      notify.start();
      try {
        await waitFor(async () => (types().length === 1 ? true : undefined), "the opening");
        const retirements = createRetirementRepository(kit.db, () => t + 1000);
        const retired = await retirements.retire("retired-told", {
          reason: "line removed",
          by: "Ana",
        });
        assert.equal(retired.last_accepted_at, new Date(t - 60_000).toISOString());
        await retirements.retire("retired-quiet", { reason: "line removed", by: "Ana" });
        // Both listed silent since before their retirement: nothing opens, nothing pages.
        const read = await feed.observe(
          ENGINE,
          lines("retired-told", "retired-quiet"),
          new Date(t + 2000),
        );
        assert.deepEqual(read, { opened: [], ended: [] });
        await waitFor(async () => (types().length === 2 ? true : undefined), "the end");
        assert.deepEqual(types(), [
          "condition.opened retired-told",
          "condition.resolved retired-told",
        ]);
        // Its end says it was retired, not that it sends again.
        const end = JSON.parse(kit.receiver.on("/retired")[1].body);
        assert.match(end.data.text, /^Stream retired-told was retired by Ana \(line removed\)/);
        assert.equal(end.data.condition.detail.retired_by, "Ana");
      } finally {
        await notify.stop();
      }
      assert.deepEqual(await episodes(), [
        `stream_silent retired-told ${new Date(t - 60_000).toISOString()} ended`,
      ]);
      assert.deepEqual(await retirementsOf("retired-quiet"), ["in force"]);
    });

    if (target.kind === "postgres") {
      test("a watch that judged a stream before it was retired opens nothing once the retirement commits (the insert waits on the stream's lock)", async () => {
        await kit.db.sql`DELETE FROM feed_condition`;
        const feed = createFeedConditions(kit.db, { graceMs: 0 });
        const t = Date.now();
        const read: FeedObservation = {
          reachable: true,
          silent: [
            { stream_id: "retired-race", last_accepted_at: new Date(t - 60_000).toISOString() },
          ],
        };
        await feed.observe(ENGINE, read, new Date(t));
        // An operator's retirement, held open in its own transaction as the repository makes it:
        // the stream's lock, the record, its episode ended.
        const retiring = await holdTransaction(kit.db, async (tx) => {
          await tx`SELECT pg_advisory_xact_lock(hashtext('stream_retirement:retired-race'))`;
          await tx`
            INSERT INTO stream_retirement (retirement_id, stream_id, retired_at, retired_by, reason,
              last_accepted_at)
            VALUES (${crypto.randomUUID()}, 'retired-race', ${new Date(t + 1000)}, 'Ana',
              'line removed', ${new Date(t - 60_000)})`;
          await tx`UPDATE feed_condition SET ended_at = ${new Date(t + 1000)}
            WHERE subject = 'retired-race' AND ended_at IS NULL`;
        });
        try {
          // The watch's next read: judged before the retirement is visible, it tries to open an
          // episode (the old one is ended by the time its insert may go on).
          const observed = feed.observe(ENGINE, read, new Date(t + 2000));
          await untilSomeoneWaitsOnALock(kit.db);
          await retiring.release();
          const changes = await observed;
          assert.deepEqual(changes.opened, [], "nothing opened for a retired stream");
        } finally {
          await retiring.release();
        }
        assert.deepEqual(await episodes(), [
          `stream_silent retired-race ${new Date(t - 60_000).toISOString()} ended`,
        ]);
      });
    }

    test("a retirement ends by itself when the stream is shown silent since a later frame, and that silence opens an episode", async () => {
      await kit.db.sql`DELETE FROM feed_condition`;
      const feed = createFeedConditions(kit.db, { graceMs: 0 });
      const retirements = createRetirementRepository(kit.db, () => at(100).getTime());
      await retirements.retire("retired-back", { reason: "line removed", by: "Ana" });
      assert.deepEqual(await feed.observe(ENGINE, silent(["retired-back", 90]), at(110)), {
        opened: [],
        ended: [],
      });
      // It sent at 120 (after the retirement), then fell silent again.
      const again = await feed.observe(ENGINE, silent(["retired-back", 120]), at(200));
      assert.deepEqual(
        again.opened.map((c) => `${c.subject} ${c.since.toISOString()}`),
        [`retired-back ${at(120).toISOString()}`],
      );
      assert.deepEqual(await retirementsOf("retired-back"), ["null sent again"]);
    });

    test("a retirement ends by itself when a complete list leaves its stream out past the grace (it sent); a full list ends none; the next silence opens an episode", async () => {
      await kit.db.sql`DELETE FROM feed_condition`;
      const feed = createFeedConditions(kit.db, { graceMs: 30_000 });
      const retirements = createRetirementRepository(kit.db, () => at(100).getTime());
      await retirements.retire("retired-sent", { reason: "line removed", by: "Ana" });
      await feed.observe(ENGINE, silent(["retired-sent", 90]), at(110));
      // A full list may have left it out; a short one within the grace (a restart) ends nothing.
      const full = Array.from({ length: SILENT_LISTED_MAX }, (_, i): [string, number] => [
        `full-${i}`,
        95,
      ]);
      await feed.observe(ENGINE, silent(...full), at(200));
      await feed.observe(ENGINE, silent(), at(120));
      assert.deepEqual(await retirementsOf("retired-sent"), ["in force"]);
      await feed.observe(ENGINE, silent(), at(300));
      assert.deepEqual(await retirementsOf("retired-sent"), ["null sent again"]);
      // Silent again since a frame before the retirement (an engine that forgot): watched as any.
      const next = await feed.observe(ENGINE, silent(["retired-sent", 95]), at(400));
      assert.deepEqual(
        next.opened.map((c) => c.subject),
        ["retired-sent"],
      );
    });

    test("hundreds of dark lines told already do not crowd a new condition out of the dispatcher's pages", async () => {
      await kit.db.sql`DELETE FROM feed_condition`;
      const feed = createFeedConditions(kit.db, { graceMs: 0 });
      const t = Date.now();
      const lines = (n: number) =>
        Array.from({ length: n }, (_, i) => ({
          stream_id: `dark-${String(i).padStart(2, "0")}`,
          last_accepted_at: new Date(t - 60_000 + i).toISOString(),
        }));
      await feed.observe(ENGINE, { reachable: true, silent: lines(5) }, new Date(t));
      const notify = kit.dispatcher(
        [{ name: "crowd", match: { stream: "dark-*" }, webhook: kit.hook("/crowd") }],
        { batchSize: 2 },
      );
      const told = () => kit.receiver.on("/crowd").length;
      notify.start();
      try {
        await waitFor(async () => (told() === 5 ? true : undefined), "the first five told");
        await feed.observe(ENGINE, { reachable: true, silent: lines(6) }, new Date(t + 1));
        await waitFor(async () => (told() === 6 ? true : undefined), "the sixth told");
      } finally {
        await notify.stop();
      }
    });
  });
}
