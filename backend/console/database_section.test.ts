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
  // No settings given to this app: the last prune's horizons, said as such.
  assert.match(
    html,
    /<dd id="retention-horizons">as the last prune ran: alerts 12 h, resolved incidents nobody acted on \(no acknowledgement\s+or verdict\) 30 d; pruned every 2.5 min/,
  );
  assert.match(
    html,
    /<dd id="last-prune" data-error="false" data-overdue="false"><time datetime="[^"]+">[^<]+<\/time> in [\d.]+ s: 0 alerts \(0 evidence rows\), 0 incidents, 0 ended feed\s+conditions, 0 sent notifications deleted/,
  );
  // The feed conditions a run deleted, counted like the rest.
  await db.sql`UPDATE retention_status SET conditions = 7, notifications = 12`;
  html = section(await (await app.request("/status")).text());
  assert.match(html, /, 0 incidents, 7 ended feed\s+conditions, 12 sent notifications deleted/);

  await db.sql`UPDATE retention_status SET error = ${HOSTILE}`;
  html = section(await (await app.request("/status")).text());
  assert.match(html, /data-error="true"/);
  assert.ok(html.includes("stopped early: &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"));
  assert.ok(!html.includes(HOSTILE));
});

test("the Database section shows the retention in force, the last prune's own horizons apart, and an overdue prune", async () => {
  // The last prune ran under 30 d / 365 d every 5 min (from the test before: 0.5 d / 30 d).
  const pruner = createPruner({
    database: db,
    alertsDays: 30,
    incidentsDays: 365,
    everyMs: 300_000,
    batchSize: 10,
  });
  assert.equal((await pruner.runOnce()).error, null);
  const [{ finished_at }] = await db.sql`SELECT finished_at FROM retention_status`;
  const finished = new Date(finished_at).getTime();
  const at = async (
    now: number,
    retention: Parameters<typeof createBackendApp>[0]["retention"],
  ) => {
    const app = createBackendApp({ database: db, clock: { now: () => now }, retention });
    return section(await (await app.request("/status")).text());
  };
  const text = (html: string, id: string) => {
    const m = new RegExp(`<dd id="${id}"[^>]*>([\\s\\S]*?)</dd>`).exec(html);
    assert.ok(m, id);
    return m[1].replace(/<[^>]+>/g, "").replace(/\s+/g, " ");
  };

  // Restarted with both horizons 0: the pruner is off, and the page says so, not the last run's.
  const off = { alertsDays: 0, incidentsDays: 0, everyMs: 300_000, enabled: false };
  let html = await at(finished + 3_600_000, off);
  assert.equal(
    text(html, "retention-horizons"),
    "retention off: keeps everything (RETENTION_ALERTS_DAYS and RETENTION_INCIDENTS_DAYS are 0)",
  );
  assert.match(
    text(html, "last-prune"),
    /; it ran with alerts 30 d, resolved incidents nobody acted on \(no acknowledgement or verdict\) 365 d; pruned every 5 min$/,
  );
  assert.match(html, /data-overdue="false"/, "off: nothing is due");

  // On, as the last run: the horizons once, the run without them; on time.
  const on = { alertsDays: 30, incidentsDays: 365, everyMs: 300_000, enabled: true };
  html = await at(finished + 60_000, on);
  assert.equal(
    text(html, "retention-horizons"),
    "alerts 30 d, resolved incidents nobody acted on (no acknowledgement or verdict) 365 d; pruned every 5 min",
  );
  assert.ok(!text(html, "last-prune").includes("it ran with"));
  assert.match(html, /data-overdue="false"/);

  // Over twice the interval since it finished: overdue, said in words.
  html = await at(finished + 2 * 300_000 + 1000, on);
  assert.match(html, /data-overdue="true"/);
  assert.match(
    text(html, "last-prune"),
    /Overdue: no prune has finished for over 2 intervals \(10 min\); the pruner may have stopped or hang\./,
  );

  // Other horizons in force than the last run's: both shown.
  html = await at(finished + 60_000, { ...on, alertsDays: 7 });
  assert.match(text(html, "retention-horizons"), /^alerts 7 d, /);
  assert.match(text(html, "last-prune"), /; it ran with alerts 30 d, /);
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
