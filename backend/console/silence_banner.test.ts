// The silence banner over the backend app and a real database: a few lines however many silences hold, and one ending soon named however many newer ones are active.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createBackendApp } from "../app.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";
import { createSilenceRepository } from "../silences/silence_repository.ts";
import { BANNER_ENDING_SOON_NAMED, BANNER_OTHERS_NAMED } from "./silence_banner.tsx";

const MINUTE = 60_000;

for (const target of testTargets()) {
  describe(`the console's silence banner on ${target.kind}`, () => {
    let db: TestDatabase;
    const now = Date.parse("2026-11-24T09:00:00Z");
    let app: ReturnType<typeof createBackendApp>;

    /** Creates a silence of one sensor as the Quality page's "mute" does, at `createdAt`. */
    const mute = (sensor: string, createdAt: number, endsAt: number) =>
      createSilenceRepository(db, () => createdAt).create({
        matchers: { stream: "line-a", sensors: [sensor] },
        ends_at: new Date(endsAt).toISOString(),
        reason: "muted from Quality: noisy",
        created_by: "Ana",
      });

    /** The banner of the Now page: its markup, its text, and the silences it names. */
    const banner = async () => {
      const page = await (await app.request("/")).text();
      const start = page.indexOf('<aside class="silence-banner"');
      assert.ok(start >= 0, "a banner");
      const html = page.slice(start, page.indexOf("</aside>", start));
      assert.ok(page.indexOf("<h1") > start + html.length, "above the h1");
      return {
        html,
        text: html.replace(/<[^>]+>/g, "").replace(/\s+/g, " "),
        named: [...html.matchAll(/<li data-silence="([^"]+)"/g)].map((m) => m[1]),
      };
    };

    before(async () => {
      db = await target.open();
      app = createBackendApp({ database: db, clock: { now: () => now } });
    });
    after(() => db.dispose());

    test("the banner stays a few lines with 50 silences holding: how many, a few named, how many more", async () => {
      for (let i = 0; i < 50; i++) {
        await mute(`feature_${1000 + i}`, now - 50 * MINUTE + i * 1000, now + 7 * 86_400_000);
      }
      const b = await banner();
      assert.match(b.text, /^50 silences hold now(?! \()/, "none ends within 2 h");
      assert.equal(b.named.length, BANNER_OTHERS_NAMED, "none ends soon: a few others named");
      assert.ok(b.html.length < 4_000, `${b.html.length} characters of markup`);
      assert.ok(
        b.html.includes(
          `<a href="/silences">and ${50 - BANNER_OTHERS_NAMED} more: manage silences</a>`,
        ),
        b.text,
      );
    });

    test("a silence created first and ending soon is named, with over 200 newer ones active", async () => {
      // Created before every other (and before the previous test's 50), it ends in 30 minutes.
      const first = await mute("feature_7", now - 90 * MINUTE, now + 30 * MINUTE);
      for (let i = 0; i < 160; i++) {
        await mute(`feature_${2000 + i}`, now - 40 * MINUTE + i * 1000, now + 7 * 86_400_000);
      }
      const b = await banner();
      assert.match(b.text, /^211 silences hold now \(1 ends within 2 h\)/);
      assert.equal(b.named[0], first.silence_id, "ending soonest, named first");
      const item = b.html.slice(b.html.indexOf(`<li data-silence="${first.silence_id}"`));
      assert.match(item.slice(0, item.indexOf("</li>")), /ends in 30 min/);
      assert.ok(b.named.length <= BANNER_ENDING_SOON_NAMED + BANNER_OTHERS_NAMED);
      assert.ok(b.text.includes(`and ${211 - b.named.length} more`), b.text);
    });
  });
}
