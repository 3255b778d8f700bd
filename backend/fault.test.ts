import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { type PrivatePostgres, startPrivatePostgres } from "./_test/private_postgres.ts";
import { ourAlert, post } from "./alerts/_fixtures.ts";
import { createBackendApp } from "./app.ts";
import { type Database, openDatabase } from "./db/database.ts";
import { migrate } from "./db/migrate.ts";

// A private server, because restarting the shared one would disturb every other test.
let pg: PrivatePostgres;
let db: Database;
before(async () => {
  pg = await startPrivatePostgres();
  db = await openDatabase({ url: pg.url, max: 4 });
  await migrate(db.sql);
});
after(async () => {
  await db?.close(1);
  await pg?.dispose();
});

test("backend survives a PostgreSQL restart under load: 503 while down, nothing lost, nothing doubled", async () => {
  const app = createBackendApp({ database: db });
  const alerts: ReturnType<typeof ourAlert>[] = [];
  let restarted = false;
  const statuses = new Map<number, number>();
  let delivered = 0;
  // A client like the engine's sender: retries 503 until the alert is stored.
  async function deliver(alert: ReturnType<typeof ourAlert>) {
    for (;;) {
      const res = await app.request("/api/v1/alert", post(alert));
      await res.arrayBuffer();
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      if (res.status === 201) return void delivered++;
      assert.equal(res.status, 503, "only 503 may be retried");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  // Alerts keep coming until PostgreSQL is back (and 300 were sent): however long the stop takes
  // on a busy host, the outage meets traffic.
  const workers = Array.from({ length: 4 }, async () => {
    while (!restarted || alerts.length < 300) {
      const alert = ourAlert();
      alerts.push(alert);
      await deliver(alert);
    }
  });

  const until = async (what: string, ok: () => boolean) => {
    const deadline = AbortSignal.timeout(60_000);
    while (!ok()) {
      if (deadline.aborted) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
  await until("some alerts stored", () => delivered >= 50);
  await pg.stop();
  await until("a 503 during the outage", () => (statuses.get(503) ?? 0) > 0);
  const ready = await app.request("/health/ready");
  assert.equal(ready.status, 503);
  assert.equal((await ready.json()).database.reachable, false);
  await pg.start();
  restarted = true;
  await Promise.all(workers);

  assert.equal(delivered, alerts.length);
  const ids = alerts.map((a) => a.alert_id);
  const [{ n, features }] = await db.sql`
    SELECT count(*)::int AS n, (SELECT count(*)::int FROM alert_feature) AS features
    FROM alert WHERE alert_id = ANY(${ids}::uuid[])`;
  assert.equal(n, alerts.length);
  assert.equal(features, alerts.length * 2);
  assert.equal((await app.request("/health/ready")).status, 200);
});
