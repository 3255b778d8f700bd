// Re-sending dead letters on PGlite/PostgreSQL with a real receiver: admin only, audited, the same webhook-id; the Health page's Re-send form.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Role } from "../../contracts/auth.ts";
import { tokenAuth } from "../_test/token_auth.ts";
import { post } from "../alerts/_fixtures.ts";
import { createBackendApp } from "../app.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";
import { incidentAlert } from "../incidents/_fixtures.ts";
import { type Receiver, startReceiver } from "./_test_receiver.ts";
import { createNotificationDispatcher } from "./notification_dispatcher.ts";
import { parseNotifyConfig } from "./notify_config.ts";

const PEOPLE: Record<string, { role: Role; token: string }> = {
  victor: { role: "viewer", token: "victor-token-0123456789" },
  olga: { role: "operator", token: "olga-token-0123456789" },
  alice: { role: "admin", token: "alice-token-0123456789" },
};
const bearer = (who: string) => ({ authorization: `Bearer ${PEOPLE[who].token}` });
const HOSTILE = '<script>alert("x")</script>';

function formPost(fields: Record<string, string>, headers: Record<string, string> = {}) {
  return {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(fields).toString(),
  };
}

interface Row {
  message_id: string;
  incident_id: string;
  event: string;
  state: string;
  attempts: number;
}

for (const target of testTargets()) {
  describe(`re-sending dead letters on ${target.kind}`, () => {
    let db: TestDatabase;
    let dir: string;
    let receiver: Receiver;
    let app: ReturnType<typeof createBackendApp>;
    /** Each route's receiver answers 400 (no retry fixes it) while its path is here. */
    const refusing = new Set<string>();
    const dispatcher = (route: string) =>
      createNotificationDispatcher({
        database: db,
        config: parseNotifyConfig(
          JSON.stringify({
            routes: [
              {
                name: route,
                match: { stream: `${route}-*` },
                webhook: { url: `${receiver.url}/${route}` },
              },
            ],
          }),
        ),
        pollMs: 20,
      });
    const rows = async (route: string) =>
      await db.sql<Row[]>`
        SELECT message_id, incident_id, event, state, attempts FROM notification_outbox
        WHERE route = ${route} ORDER BY event_at, message_id`;
    /** Runs a dispatcher for `route` until its messages are settled (none pending). */
    async function deliver(route: string, n: number): Promise<Row[]> {
      const notify = dispatcher(route);
      notify.start();
      try {
        for (const deadline = AbortSignal.timeout(30_000); !deadline.aborted; ) {
          const now = await rows(route);
          if (now.length === n && now.every((r) => r.state !== "pending")) return now;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        assert.fail(`${n} settled messages on ${route}: ${JSON.stringify(await rows(route))}`);
      } finally {
        await notify.stop();
      }
    }
    const store = async (alert: unknown) => {
      assert.equal((await app.request("/api/v1/alert", post(alert))).status, 201);
    };
    /** An open incident on `route`'s streams whose opening became a dead letter. */
    async function deadOpening(route: string, seen = 0) {
      const incident = crypto.randomUUID();
      const opened = incidentAlert({
        incidentId: incident,
        start: new Date(Date.now() - 60_000).toISOString(),
        streamId: `${route}-1`,
        event: "opened",
        sensors: [{ idx: 3, severity: 9 }],
      });
      await store(opened);
      refusing.add(`/${route}`);
      const settled = await deliver(route, seen + 1);
      const letter = settled.find((r) => r.incident_id === incident && r.event === "opened");
      assert.equal(letter?.state, "dead");
      assert.ok(letter, JSON.stringify(settled));
      return { incident, opened, letter };
    }
    async function audited(target: string) {
      const res = await app.request(
        `/api/v1/audit?action=notification.resend&target=${encodeURIComponent(target)}`,
        { headers: bearer("alice") },
      );
      assert.equal(res.status, 200);
      return (await res.json()).events as {
        at: string;
        target: string;
        actor: Record<string, string>;
        detail: Record<string, unknown>;
      }[];
    }
    const retry = (id: string, body: unknown, headers: Record<string, string>) =>
      app.request(`/api/v1/notifications/${id}/retry`, post(body, headers));

    before(async () => {
      db = await target.open();
      dir = await mkdtemp(join(tmpdir(), "dead-letters-"));
      receiver = await startReceiver();
      receiver.answer = (r) => (refusing.has(r.path) ? { status: 400 } : { status: 200 });
      const auth = await tokenAuth(dir, PEOPLE);
      app = createBackendApp({
        database: db,
        auth,
        notifications: dispatcher("health-page"),
      });
    });
    after(async () => {
      await receiver?.close();
      await db?.dispose();
      await rm(dir, { recursive: true, force: true });
    });

    test("a re-send is refused to anyone but an admin, and for bad, unknown or live ids, changing nothing", async () => {
      const { letter } = await deadOpening("refuse");
      const anonymous = await retry(letter.message_id, {}, {});
      assert.equal(anonymous.status, 401);
      assert.equal((await anonymous.json()).error, "unauthenticated");
      for (const who of ["victor", "olga"]) {
        const res = await retry(letter.message_id, {}, bearer(who));
        assert.equal(res.status, 403, who);
        assert.equal((await res.json()).error, "forbidden");
      }
      for (const [id, body, status, code] of [
        ["not-a-message", {}, 400, "invalid_request"],
        [`msg_${"0".repeat(32)}`, {}, 404, "not_found"],
        [letter.message_id, { reason: 7 }, 400, "invalid_request"],
        [letter.message_id, { reason: "x", route: "other" }, 400, "invalid_request"],
        [letter.message_id, "{nope", 400, "invalid_json"],
      ] as const) {
        const res = await retry(id, body, bearer("alice"));
        assert.equal(res.status, status, `${id} ${JSON.stringify(body)}`);
        assert.equal((await res.json()).error, code);
      }
      const route = await app.request(
        `/api/v1/notifications/routes/${encodeURIComponent("no such route!")}/retry`,
        post({}, bearer("alice")),
      );
      assert.equal(route.status, 400);
      assert.equal((await route.json()).error, "invalid_request");
      assert.deepEqual(
        (await rows("refuse")).map((r) => [r.state, r.attempts]),
        [["dead", 1]],
      );
      assert.deepEqual(await audited(`notification:${letter.message_id}`), []);
    });

    test("an admin re-sends a dead letter: pending again under its webhook-id, delivered, audited with who, when and why; not twice", async () => {
      const { letter } = await deadOpening("again");
      const before = receiver.on("/again");
      const res = await retry(
        letter.message_id,
        { reason: "receiver fixed", by: "Mallory" },
        bearer("alice"),
      );
      assert.equal(res.status, 200, await res.clone().text());
      const answer = await res.json();
      assert.equal(answer.status, "ok");
      assert.equal(answer.message.message_id, letter.message_id);
      assert.equal(answer.message.route, "again");
      assert.equal(answer.message.event, "opened");
      assert.equal(answer.message.state, "pending");
      assert.deepEqual(
        (await rows("again")).map((r) => [r.message_id, r.state, r.attempts]),
        [[letter.message_id, "pending", 0]],
      );
      const [record] = await audited(`notification:${letter.message_id}`);
      assert.deepEqual(record.actor, {
        subject: "token:alice",
        name: "alice",
        method: "token",
        role: "admin",
      });
      assert.deepEqual(record.detail, { reason: "receiver fixed" });
      assert.ok(Math.abs(Date.parse(record.at) - Date.now()) < 60_000);

      refusing.delete("/again");
      const [sent] = await deliver("again", 1);
      assert.deepEqual([sent.state, sent.attempts], ["delivered", 1]);
      const tries = receiver.on("/again");
      assert.equal(tries.length, before.length + 1);
      assert.equal(tries.at(-1)?.id, before[0].id, "the same webhook-id as before");
      assert.equal(tries.at(-1)?.body, before[0].body, "the same body");

      const twice = await retry(letter.message_id, {}, bearer("alice"));
      assert.equal(twice.status, 409);
      const refused = await twice.json();
      assert.equal(refused.error, "not_dead_letter");
      assert.match(refused.message, /is delivered, not a dead letter/);
      assert.equal((await audited(`notification:${letter.message_id}`)).length, 1);
    });

    test("a dead opening that was tried, re-sent, then silenced still goes out, and so does its incident's end", async () => {
      const { incident, opened, letter } = await deadOpening("hushed");
      const res = await retry(letter.message_id, { reason: "receiver fixed" }, bearer("alice"));
      assert.equal(res.status, 200, await res.clone().text());
      // A silence then covers the incident: the opening may have reached the receiver before it
      // died (tried), so it goes on, and the page it raises is closed.
      const silence = crypto.randomUUID();
      await db.sql`
        INSERT INTO silence (silence_id, stream_glob, starts_at, ends_at, reason, created_by, created_at)
        VALUES (${silence}, 'hushed-*', now() - interval '1 hour', now() + interval '1 hour',
          'maintenance', 'test', now())`;
      await db.sql`UPDATE incident SET silence_id = ${silence} WHERE incident_id = ${incident}`;
      refusing.delete("/hushed");
      assert.deepEqual(
        (await deliver("hushed", 1)).map((r) => [r.event, r.state]),
        [["opened", "delivered"]],
      );
      await store(
        incidentAlert({
          incidentId: incident,
          start: opened.incident_started_at,
          at: 50,
          streamId: "hushed-1",
          event: "resolved",
          sensors: [{ idx: 3, severity: 9 }],
        }),
      );
      assert.deepEqual(
        (await deliver("hushed", 2)).map((r) => [r.event, r.state]),
        [
          ["opened", "delivered"],
          ["resolved", "delivered"],
        ],
      );
      const [stored] =
        await db.sql`SELECT silence_id FROM incident WHERE incident_id = ${incident}`;
      assert.equal(stored.silence_id, silence, "the end fell under the silence");
      assert.deepEqual(
        receiver.on("/hushed").map((r) => [JSON.parse(r.body).type, r.answered]),
        [
          ["incident.opened", 400],
          ["incident.opened", 200],
          ["incident.resolved", 200],
        ],
      );
    });

    test("a route's dead letters are re-sent together and audited once; one that would open a page after its incident's end stays dead", async () => {
      const open = await deadOpening("whole");
      // An incident whose opening died and whose end went out (the receiver took only that).
      const ended = await deadOpening("whole", 1);
      receiver.answer = (r) =>
        refusing.has(r.path) && JSON.parse(r.body).type !== "incident.resolved"
          ? { status: 400 }
          : { status: 200 };
      await store(
        incidentAlert({
          incidentId: ended.incident,
          start: ended.opened.incident_started_at,
          at: 50,
          streamId: "whole-1",
          event: "resolved",
          sensors: [{ idx: 3, severity: 9 }],
        }),
      );
      await deliver("whole", 3);
      const lone = await retry(ended.letter.message_id, {}, bearer("alice"));
      assert.equal(lone.status, 409);
      const loneBody = await lone.json();
      assert.equal(loneBody.error, "not_dead_letter");
      assert.match(loneBody.message, /would open a page that nothing closes/);

      const res = await app.request(
        "/api/v1/notifications/routes/whole/retry",
        post({ reason: "after the outage" }, bearer("alice")),
      );
      assert.equal(res.status, 200, await res.clone().text());
      const answer = await res.json();
      assert.equal(answer.route, "whole");
      assert.equal(answer.more, false);
      assert.deepEqual(
        answer.resent.map((m: { message_id: string }) => m.message_id),
        [open.letter.message_id],
      );
      const [record] = await audited("notify_route:whole");
      assert.equal(record.actor.name, "alice");
      assert.deepEqual(record.detail, {
        reason: "after the outage",
        message_ids: [open.letter.message_id],
      });
      refusing.delete("/whole");
      const settled = await deliver("whole", 3);
      assert.deepEqual(
        settled
          .map((r) => [
            r.message_id === open.letter.message_id ? "open" : "ended",
            r.event,
            r.state,
          ])
          .sort(),
        [
          ["ended", "opened", "dead"],
          ["ended", "resolved", "delivered"],
          ["open", "opened", "delivered"],
        ],
      );
      // Nothing left to re-send: answered, nothing audited.
      const empty = await app.request(
        "/api/v1/notifications/routes/whole/retry",
        post({}, bearer("alice")),
      );
      assert.deepEqual((await empty.json()).resent, []);
      assert.equal((await audited("notify_route:whole")).length, 1);
      receiver.answer = (r) => (refusing.has(r.path) ? { status: 400 } : { status: 200 });
    });

    test("a dead reminder of an incident since acknowledged or judged, or with a newer reminder, is refused, changing nothing", async () => {
      const route = "remind";
      let clock = Date.now();
      const notify = createNotificationDispatcher({
        database: db,
        config: parseNotifyConfig(
          JSON.stringify({
            routes: [
              {
                name: route,
                match: { stream: `${route}-*` },
                webhook: { url: `${receiver.url}/${route}` },
                repeat_every: "1s",
              },
            ],
          }),
        ),
        now: () => clock,
      });
      /** Passes until `n` messages of the route are settled (none pending). */
      const settle = async (n: number) => {
        for (const deadline = AbortSignal.timeout(30_000); !deadline.aborted; ) {
          await notify.tick();
          const now = await rows(route);
          if (now.length === n && now.every((r) => r.state !== "pending")) return now;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        assert.fail(`${n} settled messages on ${route}: ${JSON.stringify(await rows(route))}`);
      };
      // The receiver takes openings and refuses every reminder (400: no retry helps).
      receiver.answer = (r) =>
        r.path === `/${route}` && JSON.parse(r.body).type === "incident.still_open"
          ? { status: 400 }
          : { status: 200 };
      const [newer, acked, judged] = [1, 2, 3].map(() => crypto.randomUUID());
      try {
        for (const [i, incident] of [newer, acked, judged].entries()) {
          await store(
            incidentAlert({
              incidentId: incident,
              start: new Date(clock - 60_000).toISOString(),
              streamId: `${route}-${i}`,
              event: "opened",
              sensors: [{ idx: 3, severity: 9 }],
            }),
          );
        }
        await settle(3);
        clock += 1500;
        await settle(6);
        const operator = bearer("olga");
        const ack = await app.request(`/api/v1/incidents/${acked}/ack`, post({}, operator));
        assert.equal(ack.status, 201, await ack.clone().text());
        const verdict = await app.request(
          `/api/v1/incidents/${judged}/verdict`,
          post({ verdict: "true_positive" }, operator),
        );
        assert.equal(verdict.status, 201, await verdict.clone().text());
        // A period later: a newer reminder for the incident nobody took, none for the others.
        clock += 1000;
        await settle(7);
      } finally {
        await notify.stop();
        receiver.answer = (r) => (refusing.has(r.path) ? { status: 400 } : { status: 200 });
      }
      const before = await rows(route);
      const reminder = (incident: string, n: number) =>
        before.find((r) => r.incident_id === incident && r.event === "still_open" && n-- === 1);
      for (const [letter, why] of [
        [reminder(newer, 1), /a newer reminder exists/],
        [reminder(acked, 1), /has been acknowledged/],
        [reminder(judged, 1), /has been judged/],
      ] as const) {
        assert.equal(letter?.state, "dead", JSON.stringify(before));
        const res = await retry(letter.message_id, { reason: "try again" }, bearer("alice"));
        assert.equal(res.status, 409, await res.clone().text());
        const body = await res.json();
        assert.equal(body.error, "not_dead_letter");
        assert.match(body.message, why);
        assert.deepEqual(await audited(`notification:${letter.message_id}`), []);
      }
      assert.deepEqual(await rows(route), before, "nothing changed");
      // The route's re-send takes only the latest reminder of the incident nobody took.
      const all = await app.request(
        `/api/v1/notifications/routes/${route}/retry`,
        post({}, bearer("alice")),
      );
      assert.equal(all.status, 200);
      assert.deepEqual(
        (await all.json()).resent.map((m: { message_id: string }) => m.message_id),
        [reminder(newer, 2)?.message_id],
      );
    });

    test("the Health page's Re-send form is labelled and shown to admins only, re-sends from this site only, and says so", async () => {
      const { letter, incident } = await deadOpening("health-page");
      const signin = await app.request(
        "/signin",
        formPost({ token: PEOPLE.alice.token, next: "/status" }),
      );
      assert.equal(signin.status, 303);
      const cookie = (signin.headers.get("set-cookie") ?? "").split(";")[0];
      const page = await (await app.request("/status", { headers: { cookie } })).text();
      const action = `action="/notifications/${letter.message_id}/retry"`;
      assert.ok(page.includes(action), "the admin sees the form");
      assert.ok(
        page.includes(
          `aria-label="Re-send: opened of incident ${incident.slice(0, 8)} to health-page"`,
        ),
      );
      // Each dead letter's field names whose it is, after the words on screen.
      assert.match(
        page,
        /<label for="resend-msg_[0-9a-f]{32}-reason">Why \(optional\)<span class="vh"> \(re-send opened of incident [0-9a-f]{8} to health-page\)<\/span><\/label>/,
      );
      for (const who of ["olga", "victor"]) {
        const seen = await (await app.request("/status", { headers: bearer(who) })).text();
        assert.ok(seen.includes(`data-message-id="${letter.message_id}"`), who);
        assert.ok(!seen.includes(action), `${who} sees no Re-send`);
        const refused = await app.request(
          `/notifications/${letter.message_id}/retry`,
          formPost({}, bearer(who)),
        );
        assert.equal(refused.status, 403, who);
        assert.match(await refused.text(), /<h1>Not re-sent<\/h1>[\s\S]*needs the admin role/);
      }
      // Another site's page posting with the admin's cookie.
      const crossSite = await app.request(
        `/notifications/${letter.message_id}/retry`,
        formPost({}, { cookie, origin: "https://evil.example", "sec-fetch-site": "cross-site" }),
      );
      assert.equal(crossSite.status, 403);
      assert.equal((await rows("health-page"))[0].state, "dead");

      const res = await app.request(
        `/notifications/${letter.message_id}/retry`,
        formPost({ reason: HOSTILE, by: "Mallory" }, { cookie }),
      );
      assert.equal(res.status, 303, await res.clone().text());
      assert.equal(res.headers.get("location"), `/status?resent=${letter.message_id}`);
      assert.equal((await rows("health-page"))[0].state, "pending");
      const [record] = await audited(`notification:${letter.message_id}`);
      assert.deepEqual([record.actor.name, record.detail.reason], ["alice", HOSTILE]);
      const after = await (
        await app.request(res.headers.get("location") as string, { headers: { cookie } })
      ).text();
      assert.match(
        after,
        new RegExp(
          `<p id="resend-notice" role="status" class="done" tabindex="-1">Message <code>${letter.message_id}</code> is pending again`,
        ),
      );
      assert.ok(!after.includes(action), "no longer a dead letter");
      // Pressed again (an old tab): a page saying why, nothing changed.
      const again = await app.request(
        `/notifications/${letter.message_id}/retry`,
        formPost({}, { cookie }),
      );
      assert.equal(again.status, 409);
      assert.match(await again.text(), /is pending, not a dead letter: nothing to re-send/);
      // Only a message id is ever shown as re-sent.
      const hostile = await (
        await app.request(`/status?resent=${encodeURIComponent(HOSTILE)}`, { headers: { cookie } })
      ).text();
      assert.ok(!hostile.includes("resend-notice") && !hostile.includes(HOSTILE));
    });
  });
}
