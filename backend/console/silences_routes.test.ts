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
        /<p class="error" role="alert" id="expire-error" tabindex="-1">Not expired: [^<]*Console token/,
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
      assert.match(
        blankRow,
        /id="expire-error" tabindex="-1">Not expired: “Your name” must be a name/,
      );
      assert.match(
        blankRow,
        /<input id="expire-by-[^"]+" [^>]*aria-invalid="true" aria-describedby="expire-error"/,
      );
      assert.ok(blankRow.includes('value="pump &lt;b&gt;back&lt;/b&gt; early"'));
      assert.equal(await expiredCount(), 0, "nothing expired");

      // A silence the page does not list: the message at the top, as before.
      const unknown = await app.request(
        `${BASE}/silences/${crypto.randomUUID()}/expire`,
        form(typed, withToken),
      );
      assert.equal(unknown.status, 404);
      assert.match(
        await unknown.text(),
        /id="silence-error" tabindex="-1">Not expired: There is no silence/,
      );

      const done = await app.request(`${BASE}/silences/${first}/expire`, form(typed, withToken));
      assert.equal(done.status, 303);
      assert.equal(await expiredCount(), 1);
    });

    test("a refused silence is said just above its form, in its labels' words, the field marked", async () => {
      const withToken = { cookie: `console_token=${TOKEN}`, "sec-fetch-site": "same-origin" };
      const fields = {
        stream: "line-4",
        ends: "2026-11-24 12:00",
        tz: "UTC",
        reason: "valve swap",
        created_by: "Ana",
      };
      const cases: [Record<string, string>, RegExp, string][] = [
        [
          { ...fields, tz: "Mars/Olympus" },
          /Not created: “Time zone of the times below” must be an IANA time zone/,
          "silence-tz",
        ],
        [
          { ...fields, ends: "2026-11-24 09:00" },
          /Not created: “Ends” must be in the future/,
          "silence-ends",
        ],
        [
          { ...fields, starts: "2026-11-24 13:00" },
          /Not created: “Ends” must be after “Starts”/,
          "silence-ends",
        ],
        [
          { ...fields, stream: "*" },
          /Not created: “I mean to silence every sensor of every stream” must be ticked: /,
          "silence-confirm-all",
        ],
        [
          { ...fields, days: "sun", from: "04:00", to: "01:00" },
          /Not created: “To” must be after “From” on the same day/,
          "silence-to",
        ],
        [{ ...fields, created_by: " " }, /Not created: “Your name” must be a name/, "silence-by"],
      ];
      for (const [typed, message, control] of cases) {
        const res = await app.request(`${BASE}/silences`, form(typed, withToken));
        assert.equal(res.status, 400, JSON.stringify(typed));
        const page = await res.text();
        const section = page.slice(page.indexOf('<h2 id="new-heading">'));
        const error = section.indexOf(
          '<p class="error" role="alert" id="silence-error" tabindex="-1">',
        );
        // In the New silence section, between its heading and its form.
        assert.ok(error > 0 && error < section.indexOf('<form method="post" action="/silences"'));
        assert.equal(page.split('id="silence-error"').length - 1, 1, "said once");
        assert.match(section.slice(error, section.indexOf("</p>", error)), message);
        assert.ok(
          !/'(tz|starts_at|ends_at|confirm_all|created_by|recurrence\.to)'|&#39;/.test(
            section.slice(error, section.indexOf("</p>", error)),
          ),
          "no API key named",
        );
        const tag = section.slice(section.indexOf(`id="${control}"`));
        assert.match(
          tag.slice(0, tag.indexOf(">")),
          /aria-invalid="true" aria-describedby="silence-error"/,
          control,
        );
        assert.equal(section.split('aria-invalid="true"').length - 1, 1, "only that field");
      }
      // The stream keeps its hint after the message.
      const res = await app.request(
        `${BASE}/silences`,
        form({ ...fields, stream: "line 4" }, withToken),
      );
      assert.match(
        await res.text(),
        /id="silence-stream" [^>]*aria-invalid="true" aria-describedby="silence-error silence-stream-hint"/,
      );
    });

    test("a refused action without the token says in plain words to use the page's token form", async () => {
      const page = await (
        await app.request(`${BASE}/silences/${ids[1]}/expire`, form({ by: "Zoë" }))
      ).text();
      const said = page.slice(page.indexOf('id="expire-error"'));
      const message = said.slice(0, said.indexOf("</p>"));
      assert.match(message, /Open “Console token” on this page, enter the token/);
      assert.ok(!/Bearer|Authorization/.test(message), message);
      // The API keeps its own message for clients that send the header.
      const api = await app.request(`/api/v1/silences/${ids[1]}`, { method: "DELETE" });
      assert.equal(api.status, 401);
      assert.match((await api.json()).message, /Authorization: Bearer/);
    });

    test("each silence's expiry controls are named after the words on screen and the silence", async () => {
      const page = await (await app.request(`${BASE}/silences`)).text();
      const labels = [...page.matchAll(/<label for="expire-(by|reason)-[^"]+">(.*?)<\/label>/g)];
      const names = labels.map(([, , inner]) => inner.replace(/<[^>]+>/g, ""));
      assert.ok(names.length >= 4, "two controls in each of at least two rows");
      assert.equal(new Set(names).size, names.length, `all different: ${names.join(" | ")}`);
      for (const [, control, inner] of labels) {
        const shown = inner.replace(/<span class="vh">.*?<\/span>/g, "");
        assert.equal(shown, control === "by" ? "Your name" : "Why (optional)");
      }
      assert.ok(
        names.includes(
          "Your name (expire the silence of line-2, every sensor, from 2026-11-24 10:00:00Z)",
        ),
        names.join(" | "),
      );
      // The button's name starts with what it shows (WCAG 2.5.3) and stays short: no reason.
      const buttons = [
        ...page.matchAll(/<button type="submit" aria-label="([^"]*)">([^<]*)<\/button>/g),
      ];
      const expire = buttons.filter(([, , text]) => text === "Expire now");
      assert.ok(expire.length >= 2);
      for (const [, name] of expire) {
        assert.match(
          name,
          /^Expire now: the silence of line-\d, (every sensor|sensors .+), from 2026-11-24 10:00:00Z$/,
        );
        assert.ok(!name.includes("pump swap"), name);
      }
      assert.equal(new Set(expire.map(([, name]) => name)).size, expire.length);
    });

    // Last: the silences it adds would fall outside the names the test above expects.
    test("silences of one scope and start are told apart in their controls' names: by who set them, then by their place", async () => {
      for (const by of ["Ana", "Bo", "Ana"]) {
        const res = await app.request(
          "/api/v1/silences",
          post(
            {
              matchers: { stream: "press-twin" },
              ends_at: "2026-11-25T10:00:00Z",
              reason: "valve swap",
              created_by: by,
            },
            { authorization: `Bearer ${TOKEN}` },
          ),
        );
        assert.equal(res.status, 201, await res.clone().text());
      }
      const page = await (await app.request(`${BASE}/silences`)).text();
      const names = [
        ...page.matchAll(/<button type="submit" aria-label="([^"]*)">Expire now<\/button>/g),
      ].map(([, name]) => name);
      assert.equal(new Set(names).size, names.length, names.join(" | "));
      const twins = names.filter((n) => n.includes("press-twin")).sort();
      const base = "Expire now: the silence of press-twin, every sensor, from 2026-11-24 10:00:00Z";
      assert.deepEqual(twins, [
        `${base}, set by Ana (1 of 2)`,
        `${base}, set by Ana (2 of 2)`,
        `${base}, set by Bo`,
      ]);
      const labels = [...page.matchAll(/<label for="expire-by-[^"]+">(.*?)<\/label>/g)].map(
        ([, inner]) => inner.replace(/<[^>]+>/g, ""),
      );
      assert.equal(new Set(labels).size, labels.length, labels.join(" | "));
    });

    test("an expiry of a silence someone expired first says whose stands, 409, the reason typed kept and not recorded", async () => {
      const created = await app.request(
        "/api/v1/silences",
        post(
          {
            matchers: { stream: "kiln-race" },
            ends_at: "2026-11-25T10:00:00Z",
            reason: "burner swap",
            created_by: "Ana",
          },
          { authorization: `Bearer ${TOKEN}` },
        ),
      );
      assert.equal(created.status, 201, await created.clone().text());
      const id = (await created.json()).silence.silence_id as string;
      const withToken = { cookie: `console_token=${TOKEN}`, "sec-fetch-site": "same-origin" };
      const bo = { by: "Bo", reason: "burner back" };
      const first = await app.request(`${BASE}/silences/${id}/expire`, form(bo, withToken));
      assert.equal(first.status, 303);
      // The same form again (a double click) is the one recorded.
      const again = await app.request(`${BASE}/silences/${id}/expire`, form(bo, withToken));
      assert.equal(again.status, 303);

      const carl = { by: "Carl", reason: "kiln <b>cold</b> again" };
      const late = await app.request(`${BASE}/silences/${id}/expire`, form(carl, withToken));
      assert.equal(late.status, 409);
      const page = await late.text();
      const said = page.slice(page.indexOf('id="silence-error"'));
      assert.match(
        said.slice(0, said.indexOf("</p>")).replace(/<[^>]+>/g, ""),
        /^[^>]*>Already expired by Bo at 2026-11-24 10:00:00Z: your reason was not recorded; it is kept below\.$/,
      );
      assert.match(
        page,
        /<textarea id="expire-kept-reason"[^>]*readonly[^>]*>kiln &lt;b&gt;cold&lt;\/b&gt; again<\/textarea>/,
      );
      assert.ok(!page.includes('id="silence-done"'), "no confirmation");
      const [row] =
        await db.sql`SELECT expired_by, expired_reason FROM silence WHERE silence_id = ${id}`;
      assert.deepEqual({ ...row }, { expired_by: "Bo", expired_reason: "burner back" });
    });
  });
}
