import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createBackendApp } from "../app.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";
import { ALL_OPEN_LIMIT } from "./now_page.tsx";
import { NOW_LIMIT, NOW_RESOLVED_LIMIT } from "./routes.tsx";

for (const target of testTargets()) {
  describe(`console Now page on ${target.kind}`, () => {
    let db: TestDatabase;
    let app: ReturnType<typeof createBackendApp>;
    /** Stores `n` open incidents, an hour apart, straight into the table (for volume). */
    const openIncidents = (n: number, from: string) => db.sql`
      INSERT INTO incident (incident_id, stream_id, started_at, last_alert_at, max_score,
        model_name, model_version, last_alert_id, opened_model_name, opened_model_version,
        first_alert_at, first_alert_id)
      SELECT gen_random_uuid(), 'line-a', t, t, 0.99, 'm', '1', gen_random_uuid(), 'm', '1', t,
        gen_random_uuid()
      FROM generate_series(1, ${n}) g,
        LATERAL (SELECT ${from}::timestamptz + g * interval '1 hour' AS t) x`;
    const openSection = async () => {
      const page = await (await app.request("/")).text();
      const section = page.slice(page.indexOf('<h2 id="open-heading">'));
      return section.slice(0, section.indexOf("</section>"));
    };

    before(async () => {
      db = await target.open();
      app = createBackendApp({ database: db });
    });
    after(() => db.dispose());

    test("the Now page says how many open incidents it leaves out and links to all of them", async () => {
      await openIncidents(NOW_LIMIT, "2026-01-01T00:00:00Z");
      let section = await openSection();
      assert.equal(section.split("<tr data-incident=").length - 1, NOW_LIMIT);
      assert.ok(!section.includes("open-incidents-more"), "all shown: nothing to say");

      // Three more, older than those listed: the newest 200 are shown, and the page says so.
      await openIncidents(3, "2025-01-01T00:00:00Z");
      section = await openSection();
      assert.equal(section.split("<tr data-incident=").length - 1, NOW_LIMIT);
      const note = section.slice(section.indexOf('<p id="open-incidents-more"'));
      assert.ok(note.length < section.length, "the note is in the open incidents' section");
      assert.ok(
        section.indexOf("open-incidents-more") < section.indexOf('<table class="incidents"'),
        "before the table, so it is read first",
      );
      const text = note.slice(0, note.indexOf("</p>")).replace(/<[^>]+>/g, "");
      assert.match(text, /^200 of 203 open incidents shown, oldest not shown\. All 203/);
      // A link (reached with Tab like any) named by its text, to every open incident.
      const link = /<a href="([^"]+)">([^<]+)<\/a>/.exec(note);
      assert.ok(link, note.slice(0, 400));
      assert.equal(link[2], "All 203 open incidents (JSON, newest first)");
      const all = await (await app.request(link[1].replaceAll("&amp;", "&"))).json();
      assert.equal(all.incidents.length, 203);
      assert.ok(all.incidents.every((i: { state: string }) => i.state === "open"));
    });

    test("the Now page's link says it gives the newest 500 when more are open than one answer holds", async () => {
      // 203 from the test before; 298 more make one more than an answer of the API holds.
      await openIncidents(ALL_OPEN_LIMIT + 1 - 203, "2024-01-01T00:00:00Z");
      const section = await openSection();
      const note = section.slice(section.indexOf('<p id="open-incidents-more"'));
      const link = /<a href="([^"]+)">([^<]+)<\/a>/.exec(note);
      assert.ok(link, note.slice(0, 400));
      assert.equal(link[2], "Newest 500 of the 501 open incidents (JSON)");
      const got = await (await app.request(link[1].replaceAll("&amp;", "&"))).json();
      assert.equal(got.incidents.length, ALL_OPEN_LIMIT, "what the link says it gives");
      assert.ok(got.next_cursor);
    });
  });

  describe(`console Now page's resolved list on ${target.kind}`, () => {
    let db: TestDatabase;
    let app: ReturnType<typeof createBackendApp>;
    /** Stores `n` resolved incidents that started `g` minutes ago (g = 1..n), straight into the table. */
    const resolvedIncidents = (n: number) => db.sql`
      INSERT INTO incident (incident_id, stream_id, started_at, last_alert_at, resolved_at,
        max_score, model_name, model_version, last_alert_id, opened_model_name,
        opened_model_version, first_alert_at, first_alert_id)
      SELECT gen_random_uuid(), 'line-b', t, t, t + interval '5 seconds', 0.99, 'm', '1',
        gen_random_uuid(), 'm', '1', t, gen_random_uuid()
      FROM generate_series(1, ${n}) g,
        LATERAL (SELECT now() - g * interval '100 milliseconds' AS t) x`;
    const resolvedSection = async () => {
      const page = await (await app.request("/")).text();
      const section = page.slice(page.indexOf('<h2 id="resolved-heading">'));
      return section.slice(0, section.indexOf("</section>"));
    };
    const note = (section: string) => {
      const at = section.indexOf('<p id="resolved-incidents-more"');
      return at < 0 ? "" : section.slice(at, section.indexOf("</p>", at) + 4);
    };

    before(async () => {
      db = await target.open();
      app = createBackendApp({ database: db });
    });
    after(() => db.dispose());

    test("the Now page says how many resolved incidents of the last hour it leaves out and links to them", async () => {
      await resolvedIncidents(NOW_RESOLVED_LIMIT);
      let section = await resolvedSection();
      assert.equal(section.split("<tr data-incident=").length - 1, NOW_RESOLVED_LIMIT);
      assert.equal(note(section), "", "all shown: nothing to say");

      await resolvedIncidents(7);
      section = await resolvedSection();
      assert.equal(section.split("<tr data-incident=").length - 1, NOW_RESOLVED_LIMIT);
      const said = note(section);
      assert.ok(said, section.slice(0, 600));
      assert.ok(
        section.indexOf("resolved-incidents-more") < section.indexOf('<table class="incidents"'),
        "before the table, so it is read first",
      );
      assert.match(
        said.replace(/<[^>]+>/g, ""),
        /^20 of 27 resolved incidents shown, earliest started not shown\. All 27 that started in the last hour \(JSON, newest first\)$/,
      );
      const link = /<a href="([^"]+)">([^<]+)<\/a>/.exec(said);
      assert.ok(link, said);
      const all = await (await app.request(link[1].replaceAll("&amp;", "&"))).json();
      assert.equal(all.incidents.length, 27, "what the link says it gives");
      assert.ok(all.incidents.every((i: { state: string }) => i.state === "resolved"));
    });

    test("the Now page's resolved link says it gives the newest 500 when more resolved in the hour", async () => {
      await resolvedIncidents(ALL_OPEN_LIMIT + 1 - 27);
      const said = note(await resolvedSection());
      const link = /<a href="([^"]+)">([^<]+)<\/a>/.exec(said);
      assert.ok(link, said);
      assert.match(said.replace(/<[^>]+>/g, ""), /^20 of 501 resolved incidents shown/);
      assert.equal(link[2], "Newest 500 of the 501 that started in the last hour (JSON)");
      const got = await (await app.request(link[1].replaceAll("&amp;", "&"))).json();
      assert.equal(got.incidents.length, ALL_OPEN_LIMIT);
      assert.ok(got.next_cursor);
    });
  });
}
