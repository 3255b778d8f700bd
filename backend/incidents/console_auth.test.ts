// CONSOLE_TOKEN through the real app: a wrong token is limited and logged as a wrong sign-in is, a right one still acts.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createLogger } from "../../telemetry/logger.ts";
import { post } from "../alerts/_fixtures.ts";
import { createBackendApp } from "../app.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";
import { lifecycle } from "./_fixtures.ts";

const TOKEN = "console-token-for-tests";
const BASE = "http://console.test";
/** What the browser sends with the console's own forms. */
const SAME_SITE = { origin: BASE, "sec-fetch-site": "same-origin" };

for (const target of testTargets()) {
  describe(`CONSOLE_TOKEN guesses on ${target.kind}`, () => {
    let db: TestDatabase;
    before(async () => {
      db = await target.open();
    });
    after(() => db.dispose());

    /** A fresh app (its own limiter) with CONSOLE_TOKEN, its log lines, and an open incident. */
    async function guardedApp() {
      const logs: Record<string, unknown>[] = [];
      const log = createLogger({
        service: "test",
        level: "info",
        write: (line) => logs.push(JSON.parse(line)),
      });
      const app = createBackendApp({ database: db, consoleToken: TOKEN, log });
      const id = crypto.randomUUID();
      assert.equal((await app.request("/api/v1/alert", post(lifecycle(id)[0]))).status, 201);
      const ack = (headers: Record<string, string>) =>
        app.request(`${BASE}/api/v1/incidents/${id}/ack`, post({ by: "Ana" }, headers));
      const counted = () => logs.filter((l) => l.msg === "sign-in refused" && l.failures_in_window);
      return { ack, counted };
    }

    async function assertError(res: Response, status: number, error: string): Promise<void> {
      assert.equal(res.status, status);
      assert.equal((await res.json()).error, error);
    }

    test("requireConsoleToken limits wrong bearer tokens as sign-in does: the 11th gets 429, each logged, the right one still acts", async () => {
      const { ack, counted } = await guardedApp();
      // No secret sent, nothing guessed: never counted, or anyone could lock an address out.
      for (let i = 0; i < 12; i++) await assertError(await ack({}), 401, "unauthorized");
      assert.equal(counted().length, 0);
      for (let i = 0; i < 10; i++) {
        await assertError(await ack({ authorization: `Bearer guess-${i}` }), 401, "unauthorized");
      }
      const limited = await ack({ authorization: "Bearer guess-10" });
      assert.match(limited.headers.get("retry-after") ?? "", /^\d+$/);
      const body = await limited.clone().json();
      assert.match(
        body.message,
        /^too many failed sign-ins from this address: try again in \d+ s$/,
      );
      await assertError(limited, 429, "too_many_attempts");
      const lines = counted();
      assert.equal(lines.length, 10);
      assert.ok(lines.every((l) => l.how === "console token (bearer)" && l.level === "warn"));
      assert.ok(!JSON.stringify(lines).includes("guess-"), "the guess itself is not logged");
      // Behind a reverse proxy every client shares the address: the right token still acts.
      assert.equal((await ack({ authorization: `Bearer ${TOKEN}` })).status, 201);
    });

    test("requireConsoleToken limits wrong console cookies as sign-in does, and never counts a right one sent cross-site", async () => {
      const { ack, counted } = await guardedApp();
      // The right cookie from another site is refused, but no secret was wrong.
      for (let i = 0; i < 12; i++) {
        const crossSite = { cookie: `console_token=${TOKEN}`, "sec-fetch-site": "cross-site" };
        await assertError(await ack(crossSite), 401, "unauthorized");
      }
      for (let i = 0; i < 10; i++) {
        const wrong = { cookie: `console_token=guess-${i}`, ...SAME_SITE };
        await assertError(await ack(wrong), 401, "unauthorized");
      }
      const limited = await ack({ cookie: "console_token=guess-10", ...SAME_SITE });
      await assertError(limited, 429, "too_many_attempts");
      assert.equal(counted().length, 10);
      assert.ok(counted().every((l) => l.how === "console token (cookie)"));
      assert.equal((await ack({ cookie: `console_token=${TOKEN}`, ...SAME_SITE })).status, 201);
    });
  });
}
