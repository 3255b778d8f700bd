import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { signWebhook } from "../../contracts/webhook_signature.ts";
import { createBackendApp } from "../app.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";
import { ourAlert, post } from "./_fixtures.ts";

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const NOW = 1_790_000_000;

for (const target of testTargets().slice(0, 1)) {
  describe(`signed alerts on ${target.kind}`, () => {
    let db: TestDatabase;
    let app: ReturnType<typeof createBackendApp>;
    const stored = async (id: string) =>
      (await db.sql`SELECT count(*)::int AS n FROM alert WHERE alert_id = ${id}`)[0].n as number;
    const signed = async (alert: { alert_id: string }, at = NOW, key = secret) => {
      const body = JSON.stringify(alert);
      return {
        body,
        headers: await signWebhook({ secret: key, id: alert.alert_id, timestamp: at, body }),
      };
    };

    before(async () => {
      db = await target.open();
      app = createBackendApp({
        database: db,
        signingSecret: secret,
        clock: { now: () => NOW * 1000 },
      });
    });
    after(() => db.dispose());

    test("a signed alert is verified over its raw body and stored", async () => {
      const alert = ourAlert();
      const { body, headers } = await signed(alert);
      const res = await app.request("/api/v1/alert", post(body, headers));
      assert.equal(res.status, 201);
      assert.equal(await stored(alert.alert_id), 1);
    });

    test("missing, invalid and stale signatures get 401 and store nothing", async () => {
      const cases: [string, (a: ReturnType<typeof ourAlert>) => Promise<RequestInit>][] = [
        ["unsigned", async (a) => post(a)],
        [
          "wrong secret",
          async (a) => {
            const s = await signed(a, NOW, "another-secret-of-length");
            return post(s.body, s.headers);
          },
        ],
        [
          "body changed after signing",
          async (a) => {
            const s = await signed(a);
            return post(s.body.replace("0.97", "0.98"), s.headers);
          },
        ],
        [
          "stale by more than 5 minutes",
          async (a) => {
            const s = await signed(a, NOW - 301);
            return post(s.body, s.headers);
          },
        ],
        [
          "from the future",
          async (a) => {
            const s = await signed(a, NOW + 301);
            return post(s.body, s.headers);
          },
        ],
      ];
      for (const [name, request] of cases) {
        const alert = ourAlert();
        const res = await app.request("/api/v1/alert", await request(alert));
        assert.equal(res.status, 401, name);
        assert.equal((await res.json()).error, "invalid_signature", name);
        assert.equal(await stored(alert.alert_id), 0, name);
      }
    });
  });
}
