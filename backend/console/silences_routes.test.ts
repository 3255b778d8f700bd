import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { post } from "../alerts/_fixtures.ts";
import { createBackendApp } from "../app.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";

const TOKEN = "console-token-for-tests";
const NOW = Date.parse("2026-11-24T10:00:00Z");
const BASE = "http://console.test";

function form(fields: Record<string, string>, headers: Record<string, string> = {}): RequestInit {
  return {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(fields).toString(),
  };
}

/** The markup of one silence's row on the Silences page. */
function rowOf(page: string, id: string): string {
  const row = page.slice(page.indexOf(`<tr id="silence-${id}"`));
  assert.ok(row.length < page.length, `the page lists silence ${id}`);
  return row.slice(0, row.indexOf("</tr>"));
}

for (const target of testTargets()) {
  describe(`console Silences page on ${target.kind}`, () => {
    let db: TestDatabase;
    let app: ReturnType<typeof createBackendApp>;
    const ids: string[] = [];
    const expiredCount = async () =>
      (await db.sql`SELECT count(*)::int AS n FROM silence WHERE expired_at IS NOT NULL`)[0]
        .n as number;

    before(async () => {
      db = await target.open();
      app = createBackendApp({ database: db, consoleToken: TOKEN, clock: { now: () => NOW } });
      for (const stream of ["line-1", "line-2"]) {
        const res = await app.request(
          "/api/v1/silences",
          post(
            {
              matchers: { stream },
              ends_at: "2026-11-25T10:00:00Z",
              reason: "pump swap",
              created_by: "Ana",
            },
            { authorization: `Bearer ${TOKEN}` },
          ),
        );
        assert.equal(res.status, 201, await res.clone().text());
        ids.push((await res.json()).silence.silence_id);
      }
    });
    after(() => db.dispose());

    test("the create form stores each sensor glob as typed, blank lines left out", async () => {
      const res = await app.request(
        `${BASE}/silences`,
        form(
          {
            stream: " line-3 ",
            sensors: " Temp. in\r\n\r\nfeature_42*\r\n   \r\nflow \r\n",
            starts: "2026-11-24 10:00",
            ends: "2026-11-24 12:00",
            tz: "UTC",
            reason: "pump swap",
            created_by: "Ana",
          },
          { cookie: `console_token=${TOKEN}`, "sec-fetch-site": "same-origin" },
        ),
      );
      assert.equal(res.status, 303, await res.text());
      const [row] =
        await db.sql`SELECT stream_glob, sensor_globs FROM silence WHERE stream_glob = 'line-3'`;
      assert.deepEqual(row.sensor_globs, [" Temp. in", "feature_42*", "flow "]);
    });

    test("a refused expiry keeps what was typed in its silence's row and says why beside it", async () => {
      const [first, second] = ids;
      const typed = { by: "Zoë", reason: "pump <b>back</b> early" };
      // No console token: 401, the page again with the message in that row's form.
      const noToken = await app.request(`${BASE}/silences/${first}/expire`, form(typed));
      assert.equal(noToken.status, 401);
      const page = await noToken.text();
      const row = rowOf(page, first);
      assert.match(
        row,
        /<p class="error" role="alert" id="expire-error">Not expired: [^<]*console token/,
      );
      assert.ok(row.includes('value="Zoë"'), "the name as typed");
      assert.ok(row.includes('value="pump &lt;b&gt;back&lt;/b&gt; early"'), "the reason as typed");
      assert.equal(page.split('role="alert"').length - 1, 1, "one message, in the row");
      assert.ok(!page.includes('id="silence-error"'));
      assert.ok(!rowOf(page, second).includes("Zoë"), "the other row's form is as it was");

      // With the token, a blank name: 400, the reason kept, the message in the row.
      const withToken = { cookie: `console_token=${TOKEN}`, "sec-fetch-site": "same-origin" };
      const blank = await app.request(
        `${BASE}/silences/${first}/expire`,
        form({ ...typed, by: " " }, withToken),
      );
      assert.equal(blank.status, 400);
      const blankRow = rowOf(await blank.text(), first);
      assert.match(blankRow, /id="expire-error">Not expired: &#39;by&#39; must be a name/);
      assert.ok(blankRow.includes('value="pump &lt;b&gt;back&lt;/b&gt; early"'));
      assert.equal(await expiredCount(), 0, "nothing expired");

      // A silence the page does not list: the message at the top, as before.
      const unknown = await app.request(
        `${BASE}/silences/${crypto.randomUUID()}/expire`,
        form(typed, withToken),
      );
      assert.equal(unknown.status, 404);
      assert.match(await unknown.text(), /id="silence-error">There is no silence/);

      const done = await app.request(`${BASE}/silences/${first}/expire`, form(typed, withToken));
      assert.equal(done.status, 303);
      assert.equal(await expiredCount(), 1);
    });
  });
}
