// Listing dead letters over real HTTP on PGlite/PostgreSQL: any signed-in role, paged by cursor, answers redacted, bad queries 400.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { serve } from "@hono/node-server";
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
  alice: { role: "admin", token: "alice-token-0123456789" },
};
const bearer = (who: string) => ({ authorization: `Bearer ${PEOPLE[who].token}` });
const TOKEN = "SUPERSECRET123";

for (const target of testTargets()) {
  describe(`listing dead letters on ${target.kind}`, () => {
    let db: TestDatabase;
    let dir: string;
    let receiver: Receiver;
    let app: ReturnType<typeof createBackendApp>;
    let server: ReturnType<typeof serve>;
    let base: string;
    const get = (path: string, who?: string) =>
      fetch(`${base}${path}`, { headers: who ? bearer(who) : {} });

    before(async () => {
      db = await target.open();
      dir = await mkdtemp(join(tmpdir(), "dead-letter-list-"));
      receiver = await startReceiver();
      // An Express-style 404 page: the query quoted HTML-escaped.
      receiver.answer = (r) => ({
        status: 404,
        headers: { "content-type": "text/html" },
        body: `<pre>Cannot POST ${r.path.replaceAll("&", "&amp;")}</pre>`,
      });
      app = createBackendApp({ database: db, auth: await tokenAuth(dir, PEOPLE) });
      server = await new Promise<ReturnType<typeof serve>>((resolve) => {
        const s = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, () => resolve(s));
      });
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1`;
    });
    after(async () => {
      await new Promise((resolve) => server?.close(resolve));
      await receiver?.close();
      await db?.dispose();
      await rm(dir, { recursive: true, force: true });
    });

    test("GET /notifications?state=dead lists dead letters newest first, by route, a page at a time", async () => {
      const routes = ["list-a", "list-b"].map((name) => ({
        name,
        match: { stream: `${name}-*` },
        webhook: { url: `${receiver.url}/${name}?token=${TOKEN}&team=plant` },
      }));
      const notify = createNotificationDispatcher({
        database: db,
        config: parseNotifyConfig(JSON.stringify({ routes })),
        pollMs: 20,
      });
      const incidents: string[] = [];
      for (const stream of ["list-a-1", "list-a-2", "list-b-1"]) {
        const incident = crypto.randomUUID();
        incidents.push(incident);
        const alert = incidentAlert({
          incidentId: incident,
          start: new Date(Date.now() - 60_000).toISOString(),
          streamId: stream,
          event: "opened",
          sensors: [{ idx: 3, severity: 9 }],
        });
        assert.equal((await app.request("/api/v1/alert", post(alert))).status, 201);
      }
      notify.start();
      try {
        for (const deadline = AbortSignal.timeout(30_000); ; ) {
          const [{ n }] = await db.sql<{ n: number }[]>`
            SELECT count(*)::int AS n FROM notification_outbox WHERE state = 'dead'
              AND incident_id = ANY(${incidents}::uuid[])`;
          if (n === 3) break;
          assert.ok(!deadline.aborted, `3 dead letters, got ${n}`);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      } finally {
        await notify.stop();
      }

      const anonymous = await get("/notifications?state=dead");
      assert.equal(anonymous.status, 401);
      assert.equal((await anonymous.json()).error, "unauthenticated");

      const all = await get("/notifications?state=dead", "victor");
      assert.equal(all.status, 200, await all.clone().text());
      const listed = (await all.json()) as {
        notifications: Record<string, unknown>[];
        next_cursor: string | null;
      };
      assert.equal(listed.next_cursor, null);
      assert.equal(listed.notifications.length, 3);
      const dates = listed.notifications.map((n) => Date.parse(n.dead_since as string));
      assert.deepEqual(
        dates,
        [...dates].sort((a, b) => b - a),
        "newest first",
      );
      const first = listed.notifications.find((n) => n.incident_id === incidents[2]);
      assert.deepEqual(Object.keys(first ?? {}).sort(), [
        "attempts",
        "condition_id",
        "dead_since",
        "event",
        "incident_id",
        "last_error",
        "last_status",
        "message_id",
        "route",
      ]);
      assert.equal(first?.route, "list-b");
      assert.equal(first?.event, "opened");
      assert.equal(first?.attempts, 1);
      assert.equal(first?.last_status, 404);
      assert.match(first?.message_id as string, /^msg_[0-9a-f]{32}$/);
      assert.equal(first?.last_error, "HTTP 404: <pre>Cannot POST <webhook url></pre>");
      assert.ok(!JSON.stringify(listed).includes(TOKEN));

      // One route, a page of one at a time: every letter once, then no cursor.
      const seen: string[] = [];
      let cursor: string | null = "";
      while (cursor !== null) {
        const q: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : "";
        const res = await get(`/notifications?state=dead&route=list-a&limit=1${q}`, "victor");
        assert.equal(res.status, 200);
        const page = (await res.json()) as typeof listed;
        assert.ok(page.notifications.length <= 1);
        for (const n of page.notifications) seen.push(n.incident_id as string);
        cursor = page.next_cursor;
        assert.ok(seen.length <= 2, "no page repeats a letter");
      }
      assert.deepEqual(seen.sort(), [incidents[0], incidents[1]].sort());
    });

    test("GET /notifications refuses a query off its schema with 400 invalid_request naming the parameter", async () => {
      for (const [query, name] of [
        ["", "state"],
        ["?state=pending", "state"],
        ["?state=dead&limit=0", "limit"],
        ["?state=dead&limit=many", "limit"],
        ["?state=dead&route=no%20such%20route!", "route"],
        ["?state=dead&cursor=bm9wZQ", "cursor"],
      ]) {
        const res = await get(`/notifications${query}`, "alice");
        assert.equal(res.status, 400, query);
        const body = await res.json();
        assert.equal(body.error, "invalid_request", query);
        assert.match(body.message, new RegExp(`'${name}'`), query);
      }
    });

    test("GET /notifications without a listed state says plainly which states it lists", async () => {
      for (const [query, given] of [
        ["", "none was given"],
        ["?limit=5", "none was given"],
        ["?state=pending", 'got "pending"'],
        ["?state=", 'got ""'],
      ]) {
        const res = await get(`/notifications${query}`, "victor");
        assert.equal(res.status, 400, query);
        const body = await res.json();
        assert.equal(body.error, "invalid_request", query);
        assert.equal(
          body.message,
          `'state' must be one of dead (the only state listed), ${given}`,
          query,
        );
      }
    });
  });
}
