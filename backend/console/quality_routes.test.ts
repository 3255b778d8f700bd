import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { post } from "../alerts/_fixtures.ts";
import { createBackendApp } from "../app.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";
import { incidentAlert, judgedIncident } from "../incidents/_fixtures.ts";
import { literalGlob } from "./quality_routes.tsx";

const TOKEN = "console-token-for-tests";
const NOW = Date.parse("2026-11-24T10:00:00Z");
const SENSOR = 'gauge "<i>9</i>"?';

function form(fields: Record<string, string>, headers: Record<string, string> = {}): RequestInit {
  return {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(fields).toString(),
  };
}

test("literalGlob makes the glob characters of a name literal", () => {
  assert.equal(literalGlob("feature_17"), "feature_17");
  assert.equal(literalGlob("a*b?c\\d"), "a\\*b\\?c\\\\d");
});

for (const target of testTargets()) {
  describe(`console Quality page on ${target.kind}`, () => {
    let db: TestDatabase;
    let app: ReturnType<typeof createBackendApp>;
    let guarded: ReturnType<typeof createBackendApp>;
    const silenceCount = async () =>
      (await db.sql`SELECT count(*)::int AS n FROM silence`)[0].n as number;
    const mute = { stream: "line-a", sensor: SENSOR, duration: "8h", reason: "drifts", by: "Ana" };
    /** Expires every active silence: a row an active silence mutes shows it instead of its form. */
    const expireAll = async () => {
      const { silences } = await (await app.request("/api/v1/silences?state=active")).json();
      for (const { silence_id } of silences) {
        const res = await app.request(`/api/v1/silences/${silence_id}`, {
          ...post({ by: "Ana" }),
          method: "DELETE",
        });
        assert.equal(res.status, 200, await res.text());
      }
    };

    before(async () => {
      db = await target.open();
      app = createBackendApp({ database: db, clock: { now: () => NOW } });
      guarded = createBackendApp({ database: db, consoleToken: TOKEN, clock: { now: () => NOW } });
      await judgedIncident(app, {
        streamId: "line-a",
        sensor: { idx: 9, severity: 10, name: SENSOR },
        note: "<script>x()</script>",
      });
    });
    after(() => db.dispose());

    test("the Quality page shows the counts, escapes sensor names and offers a labelled mute form", async () => {
      const res = await app.request("/quality?weeks=4");
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-security-policy")!, /form-action 'self'/);
      const page = await res.text();
      assert.match(page, /<h1>Quality<\/h1>/);
      assert.match(page, /data-total="false_positive_share">100%</);
      assert.ok(page.includes("gauge &quot;&lt;i&gt;9&lt;/i&gt;&quot;?"));
      assert.ok(!page.includes("<i>9</i>"), "a sensor name is never markup");
      for (const id of ["mute-0-for", "mute-0-reason", "mute-0-by", "quality-weeks"]) {
        assert.ok(page.includes(`<label for="${id}">`), id);
      }
      assert.ok(page.includes('aria-current="page">Quality</a>'));
      const bad = await app.request("/quality?weeks=0");
      assert.equal(bad.status, 400);
      assert.match(await bad.text(), /&#39;weeks&#39; must be at least 1/);
    });

    test("mute this sensor creates a silence on the stream and exactly that sensor, then confirms it", async () => {
      const before = await silenceCount();
      const res = await app.request("/quality/mute", form({ ...mute, weeks: "4" }));
      assert.equal(res.status, 303);
      const location = res.headers.get("location")!;
      assert.match(location, /^\/quality\?weeks=4&silence=[\da-f-]{36}$/);
      const id = location.split("silence=")[1];
      const silence = await (await app.request(`/api/v1/silences/${id}`)).json();
      assert.deepEqual(silence.matchers, { stream: "line-a", sensors: ['gauge "<i>9</i>"\\?'] });
      assert.equal(silence.starts_at, new Date(NOW).toISOString());
      assert.equal(silence.ends_at, new Date(NOW + 8 * 3_600_000).toISOString());
      assert.equal(silence.reason, "drifts");
      assert.equal(silence.created_by, "Ana");
      assert.equal(await silenceCount(), before + 1);
      const page = await (await app.request(location)).text();
      assert.match(page, new RegExp(`id="mute-done" data-silence="${id}"`));
      // Muted from a page filtered to one stream: back on that page, filter kept.
      await expireAll();
      const filtered = await (await app.request("/quality?weeks=4&stream_id=line-a")).text();
      assert.match(filtered, /<input type="hidden" name="stream_id" value="line-a"\/>/);
      const again = await app.request(
        "/quality/mute",
        form({ ...mute, weeks: "4", stream_id: "line-a" }),
      );
      assert.match(again.headers.get("location")!, /^\/quality\?weeks=4&stream_id=line-a&silence=/);
      // A longer table (`sensors`, typed into the address) is kept by both forms and the way back.
      await expireAll();
      const longer = await (await app.request("/quality?weeks=4&sensors=25")).text();
      assert.equal(
        longer.split('<input type="hidden" name="sensors" value="25"/>').length - 1,
        2,
        "the Show form and the mute form keep sensors=25",
      );
      const third = await app.request(
        "/quality/mute",
        form({ ...mute, weeks: "4", sensors: "25" }),
      );
      assert.match(third.headers.get("location")!, /^\/quality\?weeks=4&sensors=25&silence=/);
      const odd = await app.request("/quality/mute", form({ ...mute, weeks: "4", sensors: "500" }));
      assert.match(
        odd.headers.get("location")!,
        /^\/quality\?weeks=4&silence=/,
        "out of range: dropped",
      );
    });

    test("mute this sensor keeps the spaces of a sensor's name, so its silence matches it", async () => {
      const name = " TI-101 ";
      const res = await app.request(
        "/quality/mute",
        form({ ...mute, stream: "line-q", sensor: name }),
      );
      assert.equal(res.status, 303, await res.clone().text());
      const id = res.headers.get("location")!.split("silence=")[1];
      const silence = await (await app.request(`/api/v1/silences/${id}`)).json();
      assert.deepEqual(silence.matchers, { stream: "line-q", sensors: [name] });
      // The next incident on that sensor, inside the silence's time, falls under it.
      const alert = incidentAlert({
        incidentId: crypto.randomUUID(),
        event: "opened",
        start: "2026-11-24T10:30:00Z",
        streamId: "line-q",
        sensors: [{ idx: 101, severity: 10, name }],
      });
      assert.equal((await app.request("/api/v1/alert", post(alert))).status, 201);
      const incident = await (await app.request(`/api/v1/incidents/${alert.incident_id}`)).json();
      assert.equal(incident.silence_id, id);
    });

    test("a muted sensor silences an incident that flags it alone, not one that flags another sensor too, as the page says", async () => {
      const page = await (await app.request("/quality?weeks=4")).text();
      assert.match(page, /An incident that flags other sensors too is notified as before/);
      for (const name of ["TI-201", "TI-202"]) {
        const res = await app.request(
          "/quality/mute",
          form({ ...mute, stream: "line-m", sensor: name }),
        );
        assert.equal(res.status, 303, await res.clone().text());
      }
      const incident = async (sensors: { idx: number; severity: number; name: string }[]) => {
        const alert = incidentAlert({
          incidentId: crypto.randomUUID(),
          event: "opened",
          start: "2026-11-24T10:30:00Z",
          streamId: "line-m",
          sensors,
        });
        assert.equal((await app.request("/api/v1/alert", post(alert))).status, 201);
        return (await app.request(`/api/v1/incidents/${alert.incident_id}`)).json();
      };
      const alone = await incident([{ idx: 201, severity: 10, name: "TI-201" }]);
      assert.ok(alone.silence_id, "flagging the muted sensor alone: silenced");
      const both = await incident([
        { idx: 201, severity: 10, name: "TI-201" },
        { idx: 202, severity: 9, name: "TI-202" },
      ]);
      assert.equal(both.silence_id, null, "each sensor muted on its own: notified");
    });

    test("mute this sensor refuses bad input with a message on the page and stores nothing", async () => {
      const before = await silenceCount();
      const cases: [Record<string, string>, RegExp][] = [
        // In the words of the form's labels, not the API's keys.
        [{ ...mute, reason: "  " }, /“Reason” must be a reason/],
        [{ ...mute, by: "" }, /“Your name” must be a name/],
        [{ ...mute, duration: "90d" }, /“For” must be one of 8 hours, 24 hours, 7 days/],
        [{ ...mute, stream: "line a" }, /“Stream” must be a stream id/],
        [{ ...mute, stream: "*" }, /“Stream” must be a stream id/],
        [{ ...mute, sensor: "" }, /“Sensor” must be a sensor name/],
        [{ duration: "8h" }, /“Stream” must be a stream id/],
      ];
      for (const [fields, message] of cases) {
        const res = await app.request("/quality/mute", form(fields));
        assert.equal(res.status, 400, JSON.stringify(fields));
        const page = await res.text();
        const error = page.slice(page.indexOf('id="mute-error"'));
        assert.match(error.slice(0, error.indexOf("</p>")), message, JSON.stringify(fields));
        assert.match(page, /<h1>Quality<\/h1>/);
      }
      assert.equal(await silenceCount(), before);
    });

    test("a refused mute keeps what was typed in its row and says why beside it", async () => {
      const typed = { ...mute, duration: "7d", reason: "probe <i>swapped</i>", by: "Zoë" };
      const refused = await guarded.request("http://console.test/quality/mute", form(typed));
      assert.equal(refused.status, 401);
      const page = await refused.text();
      const table = page.slice(page.indexOf('<table id="quality-noisy">'));
      const row = table.slice(table.indexOf('<tr data-stream="line-a" data-feature-idx="9">'));
      const inRow = row.slice(0, row.indexOf("</tr>"));
      assert.equal(page.split('id="mute-error"').length - 1, 1, "one message, in the row");
      assert.match(
        inRow,
        /<p class="error" role="alert" id="mute-error" tabindex="-1">Nothing was muted: [^<]*Console token/,
      );
      assert.match(inRow, /<option value="7d" selected="">7 days<\/option>/);
      assert.ok(inRow.includes('value="probe &lt;i&gt;swapped&lt;/i&gt;"'), "the reason as typed");
      assert.ok(inRow.includes('value="Zoë"'), "the name as typed");
      // A row the page no longer lists (or never did): the message at the top, as before.
      const elsewhere = await (
        await app.request("/quality/mute", form({ ...mute, stream: "line-z", reason: " " }))
      ).text();
      assert.ok(
        elsewhere.indexOf('id="mute-error"') < elsewhere.indexOf('id="quality-noisy"'),
        "above the table",
      );
      assert.ok(!elsewhere.includes('value=" "'), "no row shows what was typed for another");
      // The field refused is marked, and points at the message; in the row it came from only.
      const blank = await (
        await guarded.request(
          "http://console.test/quality/mute",
          form(
            { ...typed, reason: " " },
            { cookie: `console_token=${TOKEN}`, "sec-fetch-site": "same-origin" },
          ),
        )
      ).text();
      assert.match(
        blank,
        /<input id="mute-0-reason" name="reason" required="" maxlength="500" aria-invalid="true" aria-describedby="mute-error"/,
      );
      assert.equal(blank.split('aria-invalid="true"').length - 1, 1, "only that field");
    });

    test("mute this sensor needs the console token when one is set, and this site's pages always", async () => {
      const before = await silenceCount();
      const base = "http://console.test";
      const refused = await guarded.request(`${base}/quality/mute`, form(mute));
      assert.equal(refused.status, 401);
      assert.match(await refused.text(), /Console token/);
      const crossSite = await app.request(
        `${base}/quality/mute`,
        form(mute, { "sec-fetch-site": "cross-site" }),
      );
      assert.equal(crossSite.status, 401);
      assert.equal(await silenceCount(), before);
      const page = await (await guarded.request(`${base}/quality`)).text();
      assert.ok(page.includes('<label for="quality-console-token">'));
      const ok = await guarded.request(
        `${base}/quality/mute`,
        form(mute, { cookie: `console_token=${TOKEN}`, "sec-fetch-site": "same-origin" }),
      );
      assert.equal(ok.status, 303);
      assert.equal(await silenceCount(), before + 1);
    });

    test("each noisy row's mute controls are named after the words on screen and the row", async () => {
      // A second noisy row, so that two rows' controls could share a name.
      await judgedIncident(app, {
        streamId: "line-b",
        start: "2026-11-24T09:30:00Z",
        sensor: { idx: 5, severity: 10, name: "feature_5" },
      });
      await expireAll();
      const page = await (await app.request("/quality")).text();
      const labels = [...page.matchAll(/<label for="mute-(\d+)-(for|reason|by)">(.*?)<\/label>/g)];
      const names = labels.map(([, , , inner]) => inner.replace(/<[^>]+>/g, ""));
      assert.equal(names.length, 6, "three controls in each of two rows");
      assert.equal(new Set(names).size, names.length, `all different: ${names.join(" | ")}`);
      assert.ok(names.includes("For (mute feature_5 on line-b)"), names.join(" | "));
      assert.ok(names.includes("Reason (mute feature_5 on line-b)"), names.join(" | "));
      assert.ok(names.includes("Your name (mute feature_5 on line-b)"), names.join(" | "));
      // What is shown is the start of the name (WCAG 2.5.3); the rest is read, not shown.
      for (const [, , control, inner] of labels) {
        const shown = inner.replace(/<span class="vh">.*?<\/span>/g, "");
        assert.equal(shown, { for: "For", reason: "Reason", by: "Your name" }[control]);
      }
    });
  });
}
