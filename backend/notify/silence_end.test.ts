// An incident opened under a silence and still open when it ends is told then, on PGlite and PostgreSQL, in-process and across a kill -9.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { freePort } from "../_test/free_port.ts";
import { holdTransaction, untilSomeoneWaitsOnALock } from "../_test/held_transaction.ts";
import { ownPostgresDatabase } from "../_test/own_database.ts";
import { NODE_TS, type ServiceProcess, spawnService, waitFor } from "../_test/spawn_service.ts";
import { post } from "../alerts/_fixtures.ts";
import { IncidentRow } from "../console/incident_row.tsx";
import { testTargets } from "../db/_test_databases.ts";
import { incidentAlert } from "../incidents/_fixtures.ts";
import { createIncidentRepository } from "../incidents/incident_repository.ts";
import { outboxKit } from "./_test_outbox.ts";
import { type Received, startReceiver } from "./_test_receiver.ts";

const MINUTE = 60_000;

/** Whether the console's Now row of an incident carries the "silenced" tag. */
const rowSaysSilenced = async (
  incident: Parameters<typeof IncidentRow>[0]["incident"],
  now: number,
) => (await IncidentRow({ incident, now })).toString().includes('class="tag silenced"');

for (const target of testTargets()) {
  describe(`the end of a silence over an open incident on ${target.kind}`, () => {
    const kit = outboxKit(target);
    const { store, rows, settled, bodies, hook } = kit;
    const dispatcher = (routes: unknown[], now?: () => number) =>
      kit.dispatcher(routes, now ? { now } : {});

    test("an incident opened under a silence is told once its end passes, then reminded of; one told before is not told again", async () => {
      const from = Date.parse("2026-11-30T09:00:00.000Z");
      const silenceId = crypto.randomUUID();
      // Stored as the API would, at times of our choosing (the API wants a future end).
      await kit.db.sql`
        INSERT INTO silence (silence_id, stream_glob, sensor_globs, starts_at, ends_at, reason,
          created_by, created_at)
        VALUES (${silenceId}, 'ended-1', '{}'::text[], ${new Date(from)},
          ${new Date(from + 10 * MINUTE)}, 'pump swap', 'Ana', ${new Date(from)})`;
      const [hushed, toldBefore] = [crypto.randomUUID(), crypto.randomUUID()];
      const alert = (
        incidentId: string,
        start: number,
        event: "opened" | "updated" | "resolved",
        seconds: number,
      ) =>
        incidentAlert({
          incidentId,
          start: new Date(start).toISOString(),
          at: seconds,
          streamId: "ended-1",
          event,
          sensors: [{ idx: 5, severity: 30 }],
        });
      let clock = from + 2 * MINUTE;
      const notify = dispatcher(
        [
          {
            name: "pager",
            match: { stream: "ended-*" },
            webhook: hook("/pager"),
            repeat_every: "15m",
          },
          // Matches nothing here: it hears of neither incident.
          {
            name: "elsewhere",
            match: { stream: "other-*" },
            webhook: hook("/elsewhere"),
          },
        ],
        () => clock,
      );
      const incidents = createIncidentRepository(kit.db, () => clock);
      try {
        // One opened before the silence (told), its update under it; one opened under it.
        await store(alert(toldBefore, from - MINUTE, "opened", 0));
        await notify.tick();
        await settled("pager", toldBefore, 1);
        await store(alert(toldBefore, from - MINUTE, "updated", 90));
        await store(alert(hushed, from + MINUTE, "opened", 0));
        await notify.tick();
        await settled("pager", hushed, 1);
        assert.deepEqual(await rows("pager", hushed), [["opened", "silenced"]]);
        const under = await incidents.summary(hushed);
        assert.equal(under?.silence_id, silenceId);
        assert.equal(under?.silenced, true);
        assert.equal(await rowSaysSilenced(under!, clock), true);

        // Past the silence's end, with no new alert of either incident.
        clock = from + 11 * MINUTE;
        await notify.tick();
        await settled("pager", hushed, 2);
        await notify.tick();
        const over = await incidents.summary(hushed);
        assert.equal(over?.silence_id, silenceId, "the record of what covered its latest alert");
        assert.equal(over?.silenced, false, "no silence holds over it now");
        assert.equal(await rowSaysSilenced(over!, clock), false);
        const [listed] = (
          await incidents.list({
            state: "open",
            streamId: "ended-1",
            limit: 5,
            sensorsPerIncident: 3,
          })
        ).incidents.filter((i) => i.incident_id === hushed);
        assert.equal(listed.silenced, false);

        clock += 16 * MINUTE;
        await notify.tick();
        await settled("pager", hushed, 3);
        await store(alert(hushed, from + MINUTE, "resolved", 30 * 60));
        await notify.tick();
        await settled("pager", hushed, 4);
        await settled("pager", toldBefore, 2);
      } finally {
        await notify.stop();
      }
      assert.deepEqual(await rows("pager", hushed), [
        ["opened", "silenced"],
        ["opened", "delivered"],
        ["still_open", "delivered"],
        ["resolved", "delivered"],
      ]);
      const heard = bodies("/pager").filter((b) => b.data.incident.incident_id === hushed);
      assert.deepEqual(
        heard.map((b) => b.type),
        ["incident.opened", "incident.still_open", "incident.resolved"],
      );
      // The opening says it comes after a silence, and when that ended.
      assert.deepEqual(heard[0].data.after_silence, {
        silence_id: silenceId,
        ended_at: new Date(from + 10 * MINUTE).toISOString(),
      });
      assert.equal(heard[0].timestamp, new Date(from + 10 * MINUTE).toISOString());
      assert.equal(heard[0].data.incident.state, "open");
      assert.equal(heard[1].data.after_silence, undefined);
      // Told before the silence: no second opening, its reminder resumed once the silence ended.
      assert.deepEqual(await rows("pager", toldBefore), [
        ["opened", "delivered"],
        ["still_open", "delivered"],
      ]);
      assert.equal(kit.receiver.on("/elsewhere").length, 0);
    });

    test("an incident whose silence ended while another one covers it waits for that one's end", async () => {
      const from = Date.parse("2026-11-29T09:00:00.000Z");
      const insert = async (to: number) => {
        const id = crypto.randomUUID();
        await kit.db.sql`
          INSERT INTO silence (silence_id, stream_glob, sensor_globs, starts_at, ends_at, reason,
            created_by, created_at)
          VALUES (${id}, 'overlap-1', '{}'::text[], ${new Date(from)}, ${new Date(to)},
            'maintenance', 'Ana', ${new Date(from)})`;
        return id;
      };
      // Only the first holds when the opening's alert is stored; the second, created since,
      // outlives it.
      const first = await insert(from + 10 * MINUTE);
      const id = crypto.randomUUID();
      await store(
        incidentAlert({
          incidentId: id,
          start: new Date(from + MINUTE).toISOString(),
          streamId: "overlap-1",
          event: "opened",
          sensors: [{ idx: 6, severity: 25 }],
        }),
      );
      const second = await insert(from + 20 * MINUTE);
      let clock = from + 2 * MINUTE;
      const notify = dispatcher(
        [
          {
            name: "overlap",
            match: { stream: "overlap-*" },
            webhook: hook("/overlap"),
          },
        ],
        () => clock,
      );
      try {
        await notify.tick();
        await settled("overlap", id, 1);
        clock = from + 11 * MINUTE;
        await notify.tick();
        await notify.tick();
        assert.deepEqual(await rows("overlap", id), [["opened", "silenced"]], "still covered");
        clock = from + 21 * MINUTE;
        await notify.tick();
        await settled("overlap", id, 2);
      } finally {
        await notify.stop();
      }
      const [opening] = bodies("/overlap");
      assert.equal(opening.type, "incident.opened");
      assert.equal(opening.data.after_silence.silence_id, first);
      assert.notEqual(first, second);
      assert.equal(bodies("/overlap").length, 1);
    });

    test("an incident opened under a silence and acknowledged before its end is not told when it ends", async () => {
      const from = Date.parse("2026-11-28T09:00:00.000Z");
      const silenceId = crypto.randomUUID();
      await kit.db.sql`
        INSERT INTO silence (silence_id, stream_glob, sensor_globs, starts_at, ends_at, reason,
          created_by, created_at)
        VALUES (${silenceId}, 'taken-1', '{}'::text[], ${new Date(from)},
          ${new Date(from + 10 * MINUTE)}, 'valve test', 'Ana', ${new Date(from)})`;
      const [acked, left] = [crypto.randomUUID(), crypto.randomUUID()];
      for (const [id, idx] of [
        [acked, 7],
        [left, 8],
      ] as const) {
        await store(
          incidentAlert({
            incidentId: id,
            start: new Date(from + MINUTE).toISOString(),
            streamId: "taken-1",
            event: "opened",
            sensors: [{ idx, severity: 25 }],
          }),
        );
      }
      let clock = from + 2 * MINUTE;
      const notify = dispatcher(
        [
          {
            name: "taken",
            match: { stream: "taken-*" },
            webhook: hook("/taken"),
          },
        ],
        () => clock,
      );
      try {
        await notify.tick();
        await settled("taken", acked, 1);
        await settled("taken", left, 1);
        // Someone on site takes one of them while the silence holds.
        const ack = await kit.app.request(
          `/api/v1/incidents/${acked}/ack`,
          post({ by: "Ben", note: "seen on the valve test" }),
        );
        assert.equal(ack.status, 201);
        clock = from + 11 * MINUTE;
        await notify.tick();
        await settled("taken", left, 2);
        await notify.tick();
        assert.deepEqual(await rows("taken", acked), [["opened", "silenced"]]);
      } finally {
        await notify.stop();
      }
      const told = bodies("/taken");
      assert.equal(told.length, 1);
      assert.equal(told[0].data.incident.incident_id, left);
      assert.equal(told[0].data.after_silence.silence_id, silenceId);
    });

    test("an incident opened under a silence expired early (DELETE) is told at once, its Now row no longer silenced", async () => {
      const created = await kit.app.request(
        "/api/v1/silences",
        post({
          matchers: { stream: "expired-1" },
          ends_at: new Date(Date.now() + 3_600_000).toISOString(),
          reason: "valve maintenance",
          created_by: "Ana",
        }),
      );
      assert.equal(created.status, 201);
      const { silence } = (await created.json()) as { silence: { silence_id: string } };
      const id = crypto.randomUUID();
      await store(
        incidentAlert({
          incidentId: id,
          start: new Date().toISOString(),
          streamId: "expired-1",
          event: "opened",
          sensors: [{ idx: 7, severity: 20 }],
        }),
      );
      const notify = dispatcher([
        {
          name: "early",
          match: { stream: "expired-*" },
          webhook: hook("/early"),
        },
      ]);
      notify.start();
      try {
        await settled("early", id, 1);
        const incident = async () =>
          (await (await kit.app.request(`/api/v1/incidents/${id}`)).json()) as {
            silence_id: string | null;
            silenced: boolean;
          };
        assert.deepEqual(await incident().then((i) => [i.silence_id, i.silenced]), [
          silence.silence_id,
          true,
        ]);
        const nowRow = async () =>
          ((await (await kit.app.request("/")).text()).match(
            new RegExp(`<tr data-incident="${id}"[\\s\\S]*?</tr>`),
          ) ?? [""])[0];
        assert.match(await nowRow(), /class="tag silenced"/);
        assert.equal(kit.receiver.on("/early").length, 0);

        const expired = await kit.app.request(
          `/api/v1/silences/${silence.silence_id}?by=Ana&reason=done`,
          { method: "DELETE" },
        );
        assert.equal(expired.status, 200);
        await kit.receiver.until(
          () => bodies("/early").length === 1,
          "the opening after the expiry",
        );
        await settled("early", id, 2);
        assert.deepEqual(await incident().then((i) => [i.silence_id, i.silenced]), [
          silence.silence_id,
          false,
        ]);
        assert.doesNotMatch(await nowRow(), /class="tag silenced"/);
        assert.match(await nowRow(), /data-state="open"/);
      } finally {
        await notify.stop();
      }
      const [opening] = bodies("/early");
      assert.equal(opening.type, "incident.opened");
      assert.equal(opening.data.after_silence.silence_id, silence.silence_id);
      assert.deepEqual(await rows("early", id), [
        ["opened", "silenced"],
        ["opened", "delivered"],
      ]);
    });

    if (target.kind === "postgres") {
      test("a silence created while a pass runs, and an incident opened under it, is not taken for a silence that ended", async () => {
        const notify = dispatcher([
          { name: "racing", match: { stream: "racing-*" }, webhook: hook("/racing") },
        ]);
        // The pass is held after it read the silences (none yet): its feed planning waits on a lock.
        const lock = await holdTransaction(kit.db, (tx) =>
          tx`LOCK TABLE feed_condition IN ACCESS EXCLUSIVE MODE`.then(() => undefined),
        );
        const id = crypto.randomUUID();
        try {
          const pass = notify.tick();
          await untilSomeoneWaitsOnALock(kit.db);
          // Meanwhile: a silence, then an incident opened under it.
          const created = await kit.app.request(
            "/api/v1/silences",
            post({
              matchers: { stream: "racing-1" },
              ends_at: new Date(Date.now() + 3_600_000).toISOString(),
              reason: "pump swap",
              created_by: "Ana",
            }),
          );
          assert.equal(created.status, 201);
          await store(
            incidentAlert({
              incidentId: id,
              start: new Date().toISOString(),
              streamId: "racing-1",
              event: "opened",
              sensors: [{ idx: 7, severity: 20 }],
            }),
          );
          await lock.release();
          await pass;
          await notify.tick();
        } finally {
          await lock.release();
          await notify.stop();
        }
        // Its opening is silenced; no opening "after the silence" while the silence holds.
        assert.deepEqual(await rows("racing", id), [["opened", "silenced"]]);
        assert.equal(kit.receiver.on("/racing").length, 0);
      });
    }
  });
}

/** The database a backend process uses: PGlite in a folder always, a fresh PostgreSQL one when configured. */
const processDatabases: {
  kind: string;
  env(dir: string): Promise<{ env: Record<string, string>; drop(): Promise<void> }>;
}[] = [
  {
    kind: "pglite",
    env: async (dir) => ({
      env: { DATABASE_URL: "", PGLITE_DATA_DIR: join(dir, "pglite") },
      drop: async () => {},
    }),
  },
];
if (process.env.DATABASE_URL) {
  const url = process.env.DATABASE_URL;
  processDatabases.push({
    kind: "postgres",
    env: () => ownPostgresDatabase(url, "silence_end_kill"),
  });
}

for (const database of processDatabases) {
  describe(`the end of a silence across a kill -9 on ${database.kind}`, () => {
    test("the opening after a silence's expiry is sent under one webhook-id and answered once, though the backend died while sending it", async () => {
      const dir = await mkdtemp(join(tmpdir(), "silence-end-"));
      const receiver = await startReceiver();
      const { env: dbEnv, drop } = await database.env(dir);
      let killed = false;
      // Before the kill the receiver holds every request open: the kill lands mid-delivery.
      receiver.answer = () => (killed ? { status: 200 } : "hold");
      const configPath = join(dir, "notify.json");
      await writeFile(
        configPath,
        JSON.stringify({
          routes: [
            {
              name: "pager",
              match: { stream: "kill-silence-*" },
              webhook: { url: `${receiver.url}/pager`, timeout: "2s" },
              retry: { attempts: 20, initial: "200ms", max: "1s" },
              repeat_every: "2s",
            },
          ],
        }),
      );
      const port = String(await freePort());
      const env = {
        ...dbEnv,
        HOST: "127.0.0.1",
        PORT: port,
        NOTIFY_CONFIG: configPath,
        ENGINE_URL: "http://127.0.0.1:9",
      };
      const base = `http://127.0.0.1:${port}`;
      const start = async () => {
        const service = spawnService([...NODE_TS, "backend/main.ts"], env);
        await service.waitForLog((l) => l.msg === "backend listening", 90_000);
        return service;
      };
      const incidentId = crypto.randomUUID();
      const openings = (rs: Received[]) =>
        rs.filter((r) => JSON.parse(r.body).type === "incident.opened");
      let first: ServiceProcess | undefined;
      let second: ServiceProcess | undefined;
      try {
        first = await start();
        const created = await fetch(
          `${base}/api/v1/silences`,
          post({
            matchers: { stream: "kill-silence-*" },
            ends_at: new Date(Date.now() + 3_600_000).toISOString(),
            reason: "pump swap",
            created_by: "Ana",
          }),
        );
        assert.equal(created.status, 201);
        const { silence } = (await created.json()) as { silence: { silence_id: string } };
        const res = await fetch(
          `${base}/api/v1/alert`,
          post(
            incidentAlert({
              incidentId,
              start: new Date().toISOString(),
              streamId: "kill-silence-1",
              event: "opened",
              sensors: [{ idx: 3, severity: 15 }],
            }),
          ),
        );
        assert.equal(res.status, 201);
        // Its opening is written silenced (the Health page counts it): nothing is sent.
        await waitFor(async () => {
          const page = await (await fetch(`${base}/status`)).text();
          return /<tr data-route="pager"[^>]*>[\s\S]*?<\/tr>/.exec(page)?.[0].includes(">1<")
            ? true
            : undefined;
        }, "the silenced opening on the Health page");
        // What reached the route, if anything, says which rule let it through.
        assert.deepEqual(
          receiver.on("/pager").map((r) => r.body),
          [],
        );
        const expired = await fetch(
          `${base}/api/v1/silences/${silence.silence_id}?by=Ana&reason=done`,
          { method: "DELETE" },
        );
        assert.equal(expired.status, 200);
        await receiver.until((rs) => openings(rs).length > 0, "the opening, held");
        first.child.kill("SIGKILL");
        assert.equal(await first.stop(), null);
        killed = true;

        second = await start();
        await receiver.until(
          (rs) =>
            openings(rs).some((r) => r.answered === 200) &&
            rs.some((r) => r.answered === 200 && JSON.parse(r.body).type === "incident.still_open"),
          "the opening answered and a reminder after it",
          60_000,
        );
        const all = openings(receiver.on("/pager"));
        assert.equal(new Set(all.map((r) => r.id)).size, 1, "one opening, one webhook-id");
        assert.equal(all.filter((r) => r.answered === 200).length, 1, "answered once");
        assert.equal(JSON.parse(all[0].body).data.after_silence.silence_id, silence.silence_id);
        const incident = (await (await fetch(`${base}/api/v1/incidents/${incidentId}`)).json()) as {
          silenced: boolean;
        };
        assert.equal(incident.silenced, false);
        assert.equal(await second.stop("SIGTERM"), 0);
      } finally {
        await first?.stop("SIGKILL");
        await second?.stop("SIGKILL");
        await receiver.close();
        await drop();
        await rm(dir, { recursive: true, force: true });
      }
    });
  });
}
