// Ties between stream ids in the Quality report and the alert summary, on PostgreSQL with an ICU collation: ordered (and cut at a limit) as on PGlite, in byte order.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import postgres from "postgres";
import { post } from "../alerts/_fixtures.ts";
import { createBackendApp } from "../app.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";
import { type Database, openDatabase } from "../db/database.ts";
import { migrate } from "../db/migrate.ts";
import { incidentAlert } from "./_fixtures.ts";

const NOW = Date.parse("2026-11-24T10:00:00Z");
const START = "2026-11-24T09:00:00.000Z";
// Byte order puts "Beta" first; en-US (ICU, glibc's en_US.utf8) puts "alpha" first.
const STREAMS = ["alpha", "Beta"];

type App = ReturnType<typeof createBackendApp>;

/** One incident per stream, opened at the same frame on the same sensor, each a false positive. */
async function tiedIncidents(app: App) {
  for (const stream of STREAMS) {
    const alert = incidentAlert({
      incidentId: crypto.randomUUID(),
      event: "opened",
      start: START,
      streamId: stream,
      sensors: [{ idx: 77, severity: 10, name: "TI-7" }],
    });
    assert.equal((await app.request("/api/v1/alert", post(alert))).status, 201);
    const judged = await app.request(
      `/api/v1/incidents/${alert.incident_id}/verdict`,
      post({ verdict: "false_positive", by: "Ana" }),
    );
    assert.equal(judged.status, 201, await judged.text());
  }
}

/** The orders a tie between the two streams decides. */
async function orders(app: App) {
  const quality = await (await app.request("/api/v1/quality?weeks=1")).json();
  const one = await (await app.request("/api/v1/quality?weeks=1&sensors=1")).json();
  const summary = await (await app.request(`/api/v1/alerts/summary?from=${START}`)).json();
  const ids = (rows: { stream_id: string }[]) => rows.map((r) => r.stream_id);
  return {
    qualityStreams: ids(quality.streams),
    falsePositiveSensors: ids(quality.false_positive_sensors),
    firstFalsePositiveSensor: ids(one.false_positive_sensors),
    summaryStreams: ids(summary.streams),
  };
}

const url = process.env.DATABASE_URL;

// A database of another collation needs a real PostgreSQL server: with DATABASE_URL.
(url ? describe : () => {})("ties between stream ids under an ICU collation", {}, () => {
  const name = `test_icu_${process.pid}_${Date.now().toString(36)}`;
  let admin: postgres.Sql;
  let pglite: TestDatabase;
  let icu: Database | undefined;

  before(async () => {
    admin = postgres(url!, { max: 1, onnotice: () => {} });
    await admin.unsafe(
      `CREATE DATABASE ${name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'`,
    );
    const target = new URL(url!);
    target.pathname = `/${name}`;
    icu = await openDatabase({ url: target.toString() });
    await migrate(icu.sql);
    pglite = await testTargets()[0].open();
  });
  after(async () => {
    await icu?.close();
    await pglite?.dispose();
    await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  });

  test("the Quality report and the alert summary order tied streams as PGlite does, in byte order", async () => {
    const [collation] = await icu!.sql<{ provider: string; locale: string }[]>`
      SELECT datlocprovider AS provider, daticulocale AS locale FROM pg_database
      WHERE datname = current_database()`;
    assert.deepEqual(collation, { provider: "i", locale: "en-US" });
    const [icuOrder] = await icu!.sql<{ first: string }[]>`
      SELECT min(s) AS first FROM unnest(${STREAMS}::text[]) s`;
    assert.equal(icuOrder.first, "alpha", "the database's own collation puts alpha first");

    const apps = { pglite: pglite, icu: icu! }; // same data on each
    const seen: Record<string, Awaited<ReturnType<typeof orders>>> = {};
    for (const [kind, database] of Object.entries(apps)) {
      const app = createBackendApp({ database, clock: { now: () => NOW } });
      await tiedIncidents(app);
      seen[kind] = await orders(app);
    }
    const bytes = ["Beta", "alpha"];
    assert.deepEqual(seen.pglite, {
      qualityStreams: bytes,
      falsePositiveSensors: bytes,
      firstFalsePositiveSensor: ["Beta"],
      summaryStreams: bytes,
    });
    assert.deepEqual(seen.icu, seen.pglite);
  });
});
