import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { post } from "../alerts/_fixtures.ts";
import { createBackendApp } from "../app.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";
import { lifecycle } from "../incidents/_fixtures.ts";
import { verdictFromForm } from "./verdict_form.tsx";

const TOKEN = "console-token-for-tests";
const HOSTILE = "<script>window.pwned=1</script>";

function form(fields: Record<string, string>, headers: Record<string, string> = {}): RequestInit {
  return {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(fields).toString(),
  };
}

test("verdictFromForm keeps string fields and leaves blank optional ones out", () => {
  assert.deepEqual(
    verdictFromForm({ verdict: "maintenance", cause: "  ", note: "", by: "Ana", extra: "x" }),
    { verdict: "maintenance", by: "Ana" },
  );
  assert.deepEqual(verdictFromForm({ verdict: new File([], "f"), note: " x " }), {
    verdict: "",
    by: "",
    note: " x ",
  });
});

for (const target of testTargets()) {
  describe(`console verdict form on ${target.kind}`, () => {
    let db: TestDatabase;
    let app: ReturnType<typeof createBackendApp>;
    let guarded: ReturnType<typeof createBackendApp>;
    const incident = async () => {
      const id = crypto.randomUUID();
      const alert = lifecycle(id, new Date().toISOString())[0];
      assert.equal((await app.request("/api/v1/alert", post(alert))).status, 201);
      return id;
    };
    const verdicts = async (id: string) =>
      (
        await db.sql`SELECT verdict, cause, note, given_by FROM incident_verdict
          WHERE incident_id = ${id} ORDER BY verdict_id`
      ).map((r) => ({ ...r }));

    before(async () => {
      db = await target.open();
      app = createBackendApp({ database: db });
      guarded = createBackendApp({ database: db, consoleToken: TOKEN });
    });
    after(() => db.dispose());

    test("the incident page carries a labelled verdict form beside the acknowledgement", async () => {
      const id = await incident();
      const page = await (await app.request(`/incidents/${id}`)).text();
      assert.ok(page.indexOf('id="ack-heading"') < page.indexOf('id="verdict-heading"'));
      assert.ok(page.indexOf('id="verdict-heading"') < page.indexOf('id="timeline-heading"'));
      assert.ok(page.includes(`action="/incidents/${id}/verdict"`));
      for (const control of ["verdict-kind", "verdict-cause", "verdict-note", "verdict-by"]) {
        assert.ok(page.includes(`<label for="${control}">`), control);
        assert.ok(page.includes(`id="${control}"`), control);
      }
      assert.match(page, /data-verdict="none">No verdict yet\./);
    });

    test("the verdict form records a verdict, shows it with its history and in the Now list", async () => {
      const id = await incident();
      const first = await app.request(
        `/incidents/${id}/verdict`,
        form({ verdict: "false_positive", cause: "", note: HOSTILE, by: "Ana" }),
      );
      assert.equal(first.status, 303);
      assert.equal(first.headers.get("location"), `/incidents/${id}?done=verdict`);
      const said = await (await app.request(`/incidents/${id}?done=verdict`)).text();
      assert.match(said, /<p id="verdict-done" role="status" class="done" tabindex="-1">/);
      const change = await app.request(
        `/incidents/${id}/verdict`,
        form({ verdict: "sensor_fault", cause: "loose <b>wire</b>", note: "", by: "Bo" }),
      );
      assert.equal(change.status, 303);
      assert.deepEqual(await verdicts(id), [
        { verdict: "false_positive", cause: null, note: HOSTILE, given_by: "Ana" },
        { verdict: "sensor_fault", cause: "loose <b>wire</b>", note: null, given_by: "Bo" },
      ]);
      const page = await (await app.request(`/incidents/${id}`)).text();
      assert.match(page, /id="verdict-state" data-verdict="sensor_fault">/);
      assert.ok(page.includes("loose &lt;b&gt;wire&lt;/b&gt;"));
      assert.ok(page.includes("1 earlier verdict, newest first"));
      assert.ok(page.includes("&lt;script&gt;window.pwned=1&lt;/script&gt;"));
      assert.ok(!page.includes(HOSTILE), "the note is never markup");
      const now = await (await app.request("/")).text();
      const row = now.slice(now.indexOf(`data-incident="${id}"`));
      assert.match(row.slice(0, row.indexOf("</tr>")), /data-verdict="sensor_fault">sensor fault</);
    });

    test("the verdict form answers bad input with a message on the page and stores nothing", async () => {
      const id = await incident();
      const cases: [Record<string, string>, RegExp, string][] = [
        // In the words of the form's labels, the field refused marked and tied to the message.
        [{ verdict: "", by: "Ana" }, /“Verdict” must be one of/, "verdict-kind"],
        [{ verdict: "dunno", by: "Ana" }, /“Verdict” must be one of/, "verdict-kind"],
        [{ verdict: "maintenance", by: "   " }, /“Your name” must be a name/, "verdict-by"],
        [{ verdict: "maintenance" }, /“Your name” must be a name/, "verdict-by"],
        [
          { verdict: "maintenance", by: "Ana", cause: "x".repeat(501) },
          /“Cause” must be at most/,
          "verdict-cause",
        ],
      ];
      for (const [fields, message, control] of cases) {
        const res = await app.request(`/incidents/${id}/verdict`, form(fields));
        assert.equal(res.status, 400, JSON.stringify(fields));
        const page = await res.text();
        const alert = page.slice(page.indexOf('id="verdict-error"'));
        assert.match(alert.slice(0, alert.indexOf("</p>")), message);
        assert.ok(!alert.slice(0, alert.indexOf("</p>")).includes("&#39;"), "no API key named");
        assert.match(page, /Nothing was recorded/);
        const tag = page.slice(page.indexOf(`id="${control}"`));
        assert.match(
          tag.slice(0, tag.indexOf(">")),
          /aria-invalid="true" aria-describedby="verdict-error"/,
        );
        assert.equal(page.split('aria-invalid="true"').length - 1, 1, "only that field");
      }
      assert.deepEqual(await verdicts(id), []);
      const missing = await app.request(
        `/incidents/${crypto.randomUUID()}/verdict`,
        form({ verdict: "maintenance", by: "Ana" }),
      );
      assert.equal(missing.status, 404);
      assert.equal((await app.request("/incidents/nope/verdict", form({}))).status, 400);
    });

    test("the verdict form needs the console token when one is set, and this site's pages always", async () => {
      const id = await incident();
      const base = "http://console.test";
      const body = { verdict: "true_positive", by: "Ana" };
      const typed = {
        verdict: "sensor_fault",
        cause: "wire <b>3</b>",
        note: "TC-7 open",
        by: "Bo",
      };
      const refused = await guarded.request(`${base}/incidents/${id}/verdict`, form(typed));
      assert.equal(refused.status, 401);
      const page = await refused.text();
      // In plain words: the API's "Authorization: Bearer" means nothing on this page.
      const said = page.slice(page.indexOf('id="verdict-error"'));
      assert.match(said.slice(0, said.indexOf("</p>")), /Open “Console token” on this page/);
      assert.ok(!said.slice(0, said.indexOf("</p>")).includes("Bearer"));
      // What was typed is still in the form, escaped.
      assert.match(page, /<option value="sensor_fault" selected="">/);
      assert.match(page, /id="verdict-cause"[^>]* value="wire &lt;b&gt;3&lt;\/b&gt;"/);
      assert.match(page, /<textarea id="verdict-note"[^>]*>TC-7 open<\/textarea>/);
      assert.match(page, /id="verdict-by"[^>]* value="Bo"/);
      const crossSite = await app.request(
        `${base}/incidents/${id}/verdict`,
        form(body, { "sec-fetch-site": "cross-site" }),
      );
      assert.equal(crossSite.status, 401);
      assert.deepEqual(await verdicts(id), []);
      const ok = await guarded.request(
        `${base}/incidents/${id}/verdict`,
        form(body, { cookie: `console_token=${TOKEN}`, "sec-fetch-site": "same-origin" }),
      );
      assert.equal(ok.status, 303);
      assert.equal((await verdicts(id)).length, 1);
    });

    test("a verdict refused for want of the token comes back through the token form as typed, or says to copy it when too long", async () => {
      const id = await incident();
      const typed = {
        verdict: "maintenance",
        cause: "valve",
        note: "drained <b>\r\nfirst",
        by: "Ana",
      };
      const refused = await guarded.request(`/incidents/${id}/verdict`, form(typed));
      assert.equal(refused.status, 401);
      const back = (await refused.text()).match(
        /<input type="hidden" name="return" value="([^"]*)"/,
      )?.[1];
      assert.ok(back?.startsWith(`/incidents/${id}?`), back);
      const stored = await guarded.request(
        "/console-token",
        form({ token: TOKEN, return: back!.replaceAll("&amp;", "&") }),
      );
      assert.equal(stored.status, 303);
      const cookie = stored.headers.get("set-cookie")!.split(";")[0];
      const page = await (
        await guarded.request(stored.headers.get("location")!, { headers: { cookie } })
      ).text();
      assert.match(
        page,
        /id="console-token-stored"[^>]*>Token stored: [^<]*filled in as you typed it/,
      );
      assert.match(page, /<option value="maintenance" selected="">maintenance<\/option>/);
      assert.match(page, /id="verdict-cause" name="cause" maxlength="500" value="valve"/);
      assert.match(page, /<textarea id="verdict-note"[^>]*>drained &lt;b&gt;\r\nfirst<\/textarea>/);
      assert.match(page, /id="verdict-by"[^>]* value="Ana"/);
      assert.deepEqual(await verdicts(id), [], "nothing recorded until it is sent");

      // 2000 characters of three UTF-8 bytes each: too long for a URL the browser sends back.
      const long = await guarded.request(
        `/incidents/${id}/verdict`,
        form({ ...typed, note: "温".repeat(2000) }),
      );
      const longPage = await long.text();
      assert.match(longPage, /<input type="hidden" name="return" value="\/incidents\/[^"?]*"/);
      assert.match(longPage, /id="console-token-long">What you typed is too long to carry/);
    });
  });
}
