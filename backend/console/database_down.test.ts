// With PostgreSQL stopped, each console page is a console page that says so (status, navigation, the way to Health), not the API's JSON.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { type PrivatePostgres, startPrivatePostgres } from "../_test/private_postgres.ts";
import { post } from "../alerts/_fixtures.ts";
import { createBackendApp } from "../app.ts";
import { type Database, openDatabase } from "../db/database.ts";
import { migrate } from "../db/migrate.ts";
import { incidentAlert } from "../incidents/_fixtures.ts";

// A private server, because stopping the shared one would disturb every other test.
let pg: PrivatePostgres;
let db: Database;
before(async () => {
  pg = await startPrivatePostgres();
  db = await openDatabase({ url: pg.url, max: 2 });
  await migrate(db.sql);
});
after(async () => {
  await db?.close(1);
  await pg?.dispose();
});

const BROWSER = { accept: "text/html,application/xhtml+xml,*/*;q=0.8" };

test("console pages with the database down answer 503 as a console page: h1, navigation, Retry-After, the way to Health", async () => {
  const app = createBackendApp({ database: db });
  const alert = incidentAlert({
    incidentId: crypto.randomUUID(),
    event: "opened",
    start: new Date().toISOString(),
    sensors: [{ idx: 4242, severity: 20 }],
  });
  assert.equal((await app.request("/api/v1/alert", post(alert))).status, 201);
  await pg.stop();

  for (const path of [
    "/",
    `/incidents/${alert.incident_id}`,
    "/quality",
    "/silences",
    "/overview",
  ]) {
    const res = await app.request(path, { headers: BROWSER });
    assert.equal(res.status, 503, path);
    assert.match(res.headers.get("content-type") ?? "", /^text\/html/, path);
    assert.equal(res.headers.get("retry-after"), "1", path);
    assert.match(res.headers.get("content-security-policy") ?? "", /frame-ancestors 'none'/);
    assert.equal(res.headers.get("cache-control"), "no-store");
    const page = await res.text();
    assert.match(page, /^<!doctype html>/, path);
    assert.match(page, /<h1>Database unavailable<\/h1>/, path);
    assert.match(
      page,
      /<p role="alert" id="message" tabindex="-1" data-error="database_unavailable">the database is unavailable; retry later<\/p>/,
      path,
    );
    // The navigation, none of it marked current, and the Health page named as the way on.
    for (const href of ["/", "/overview", "/quality", "/silences", "/status"]) {
      assert.ok(page.includes(`<a href="${href}">`), `${path}: a link to ${href}`);
    }
    assert.ok(!page.includes("aria-current"), path);
    assert.match(page, /The <a href="\/status">Health page<\/a> says/, path);
  }
  // A form sent meanwhile: a page too, its status kept.
  const ack = await app.request(`/incidents/${alert.incident_id}/ack`, {
    method: "POST",
    headers: { ...BROWSER, "content-type": "application/x-www-form-urlencoded" },
    body: "by=Ana",
  });
  assert.ok(ack.status >= 500, String(ack.status));
  assert.match(await ack.text(), /<h1>[^<]+<\/h1>/);

  // The Health page still answers, and says the database is unreachable.
  const health = await app.request("/status", { headers: BROWSER });
  assert.equal(health.status, 200);
  assert.match(await health.text(), /unreachable/);

  // The API, and a script asking for JSON, get the JSON as before.
  for (const [path, accept] of [
    ["/api/v1/incidents", "text/html"],
    ["/", "application/json"],
  ]) {
    const res = await app.request(path, { headers: { accept } });
    assert.equal(res.status, 503, path);
    assert.equal(res.headers.get("retry-after"), "1");
    assert.equal((await res.json()).error, "database_unavailable", path);
  }
  await pg.start();
  const back = await app.request("/", { headers: BROWSER });
  assert.equal(back.status, 200, "the pages come back with the database");
});
