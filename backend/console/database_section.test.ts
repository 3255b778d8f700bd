// The Health page's Database section, rendered from a real database before and after a prune.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { ourAlert, post } from "../alerts/_fixtures.ts";
import { createBackendApp } from "../app.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";
import { lifecycle } from "../incidents/_fixtures.ts";
import { createPruner } from "../retention/pruner.ts";
import { bytes, horizon } from "./database_section.tsx";

const HOSTILE = '<script>alert("x")</script>';

let db: TestDatabase;
let app: ReturnType<typeof createBackendApp>;

before(async () => {
  db = await testTargets()[0].open();
  app = createBackendApp({ database: db });
});
after(() => db.dispose());

const section = (page: string) => {
  const from = page.indexOf('<section aria-labelledby="database-heading">');
  assert.ok(from >= 0, "the page has a Database section");
  return page.slice(from, page.indexOf("</section>", from));
};

test("the Health page's Database section shows the size, the oldest rows kept and that no prune ran yet", async () => {
  for (const alert of [ourAlert(), ...lifecycle(crypto.randomUUID(), new Date().toISOString())]) {
    assert.equal((await app.request("/api/v1/alert", post(alert))).status, 201);
  }
  const html = section(await (await app.request("/status")).text());
  assert.match(html, /<h2 id="database-heading">Database<\/h2>/);
  assert.match(html, /<dd data-bytes="\d+">[\d.]+ MB \(this backend&#39;s tables: [\d.]+ kB\)/);
  const [{ received_at }] = await db.sql`SELECT min(received_at) AS received_at FROM alert`;
  assert.ok(html.includes(`data-oldest-alert="${received_at.toISOString()}"`));
  assert.match(html, /data-oldest-incident="\d{4}-/);
  assert.match(html, /no prune recorded/);
  assert.match(html, /<code>alert_feature<\/code>/);
});

test("the Health page's Database section shows the horizons and the last prune, its error escaped", async () => {
  const pruner = createPruner({
    database: db,
    alertsDays: 0.5,
    incidentsDays: 30,
    everyMs: 150_000,
    batchSize: 10,
  });
  assert.equal((await pruner.runOnce()).error, null);
  let html = section(await (await app.request("/status")).text());
  assert.match(
    html,
    /alerts 12 h, resolved incidents with their verdicts 30 d; pruned every 2.5 min/,
  );
  assert.match(
    html,
    /<dd id="last-prune" data-error="false"><time datetime="[^"]+">[^<]+<\/time> in [\d.]+ s: 0 alerts \(0 evidence rows\), 0 incidents, 0 sent\s+notifications deleted/,
  );

  await db.sql`UPDATE retention_status SET error = ${HOSTILE}`;
  html = section(await (await app.request("/status")).text());
  assert.match(html, /data-error="true"/);
  assert.ok(html.includes("stopped early: &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"));
  assert.ok(!html.includes(HOSTILE));
});

test("bytes and horizon read as people write them", () => {
  assert.deepEqual([0, 512, 1500, 8_323_195, 2.5e9].map(bytes), [
    "0 B",
    "512 B",
    "1.5 kB",
    "8.32 MB",
    "2.5 GB",
  ]);
  assert.deepEqual([0, 0.0007, 0.01, 0.5, 1, 30, 365].map(horizon), [
    "forever",
    "60.5 s",
    "14.4 min",
    "12 h",
    "24 h",
    "30 d",
    "365 d",
  ]);
});
