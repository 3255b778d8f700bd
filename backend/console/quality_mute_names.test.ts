// The Quality page's Mute on a sensor renamed within the range (only in case, or unnamed in some alerts): the silence covers every name a silence can hold, so the next incident is silenced whichever it carries; names it cannot hold (empty, control characters, too long) are said.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { post } from "../alerts/_fixtures.ts";
import { createBackendApp } from "../app.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";
import { incidentAlert } from "../incidents/_fixtures.ts";

const NOW = Date.parse("2026-11-24T10:00:00Z");

/** `[stream, feature_idx, names oldest first (undefined: no name)]`. */
const SENSORS: [string, number, (string | undefined)[]][] = [
  // Renamed only in case, one each way: on any collation one of them has its old name largest.
  ["line-up", 9001, ["FIC-101", undefined, "fic-101"]],
  ["line-down", 9002, ["fic-102", "FIC-102"]],
  // Never named: silences match it as feature_9003.
  ["line-bare", 9003, [undefined]],
];

/** An incident alert of `stream` flagging sensor `idx` under `name` (undefined: none), at `start`. */
function alertOf(stream: string, idx: number, name: string | undefined, start: string) {
  const alert = incidentAlert({
    incidentId: crypto.randomUUID(),
    event: "opened",
    start,
    streamId: stream,
    sensors: [{ idx, severity: 10 }],
  });
  const feature: { feature?: string } = alert.anomalous_features[0];
  if (name === undefined) delete feature.feature;
  else feature.feature = name;
  return alert;
}

const fromHtml = (html: string) =>
  html
    .replaceAll("&quot;", '"')
    .replaceAll("&#39;", "'")
    .replaceAll("&lt;", "<")
    .replaceAll("&gt;", ">")
    .replaceAll("&amp;", "&");

/** The hidden fields of the mute form in the noisy table's row of `stream` and `idx`, as sent. */
function muteForm(page: string, stream: string, idx: number): [string, string][] {
  const table = page.slice(page.indexOf('<table id="quality-noisy">'));
  const from = table.indexOf(`<tr data-stream="${stream}" data-feature-idx="${idx}">`);
  assert.ok(from >= 0, `${stream} ${idx} is listed`);
  const row = table.slice(from, table.indexOf("</tr>", from));
  const form = row.slice(row.indexOf("<form"), row.indexOf("</form>"));
  assert.ok(form.length > 0, `${stream} ${idx} offers the mute form: ${row}`);
  return [...form.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)"\/>/g)].map(
    ([, name, value]) => [name, fromHtml(value)],
  );
}

for (const target of testTargets()) {
  describe(`muting a renamed sensor from the Quality page on ${target.kind}`, () => {
    let db: TestDatabase;
    let app: ReturnType<typeof createBackendApp>;

    before(async () => {
      db = await target.open();
      app = createBackendApp({ database: db, clock: { now: () => NOW } });
      for (const [stream, idx, names] of SENSORS) {
        for (const [n, name] of names.entries()) {
          const start = new Date(Date.parse("2026-11-24T08:00:00Z") + n * 1_800_000);
          const alert = alertOf(stream, idx, name, start.toISOString());
          const stored = await app.request("/api/v1/alert", post(alert));
          assert.equal(stored.status, 201, await stored.text());
          const judged = await app.request(
            `/api/v1/incidents/${alert.incident_id}/verdict`,
            post({ verdict: "false_positive", by: "Ana" }),
          );
          assert.equal(judged.status, 201, await judged.text());
        }
      }
    });
    after(() => db.dispose());

    test("the row shows the latest name, and its mute silences the sensor under every name it had", async () => {
      const page = await (await app.request("/quality?weeks=1")).text();
      for (const [stream, idx, names] of SENSORS) {
        const fields = muteForm(page, stream, idx);
        const every = [...new Set(names.map((n) => n ?? `feature_${idx}`))];
        const latest = names.findLast((n) => n !== undefined);
        if (latest !== undefined) {
          assert.ok(
            page.includes(
              `<tr data-stream="${stream}" data-feature-idx="${idx}"><th scope="row">${latest}`,
            ),
            `${stream} ${idx} is shown as ${latest}`,
          );
        }
        const res = await app.request("/quality/mute", {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams([
            ...fields,
            ["duration", "8h"],
            ["reason", "noisy"],
            ["by", "Ana"],
          ]).toString(),
        });
        assert.equal(res.status, 303, await res.text());
        const location = res.headers.get("location")!;
        const id = location.split("silence=")[1];
        const silence = await (await app.request(`/api/v1/silences/${id}`)).json();
        // The next incidents, whichever name (or none) they carry, fall under the silence.
        for (const name of [...new Set(names)]) {
          const next = alertOf(stream, idx, name, "2026-11-24T10:30:00Z");
          assert.equal((await app.request("/api/v1/alert", post(next))).status, 201);
          const incident = await (
            await app.request(`/api/v1/incidents/${next.incident_id}`)
          ).json();
          assert.equal(
            incident.silence_id,
            id,
            `${stream}: an incident naming the sensor ${name ?? "(no name)"} is silenced`,
          );
        }
        assert.deepEqual(
          [...silence.matchers.sensors].sort(),
          [...every].sort(),
          `${stream} ${idx}: the silence names every name`,
        );
        // The confirmation says every name muted.
        const done = await (await app.request(location)).text();
        const said = /<p[^>]*id="mute-done"[^>]*>(.*?)<\/p>/s.exec(done)?.[1] ?? "";
        for (const name of every) assert.ok(said.includes(name), `${name} in ${said}`);
        // Already muted: the row says so instead of offering the form again.
        const row = done.slice(
          done.indexOf(`<tr data-stream="${stream}" data-feature-idx="${idx}">`),
        );
        assert.match(row.slice(0, row.indexOf("</tr>")), new RegExp(`data-silence="${id}"`));
      }
    });

    test("a mute refuses more sensor names than a form carries, or none, and stores nothing", async () => {
      const count = async () => (await db.sql`SELECT count(*)::int AS n FROM silence`)[0].n;
      const before = await count();
      const base = [
        ["stream", "line-up"],
        ["duration", "8h"],
        ["reason", "noisy"],
        ["by", "Ana"],
      ];
      const many = Array.from({ length: 101 }, (_, n) => ["sensor", `s${n}`]);
      const cases: [string[][], RegExp][] = [
        [many, /“Sensor” must be at most 100 sensor names/],
        [[], /“Sensor” must be a sensor name of 1..500 characters/],
        [
          [
            ["sensor", "ok"],
            ["sensor", ""],
          ],
          /“Sensor” must be a sensor name of 1..500 characters/,
        ],
        [
          [
            ["sensor", "ok"],
            ["sensor", "TI\t104"],
          ],
          /“Sensor” must be a sensor name a silence holds \(no control characters/,
        ],
      ];
      for (const [sensors, message] of cases) {
        const res = await app.request("/quality/mute", {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams([...base, ...sensors]).toString(),
        });
        assert.equal(res.status, 400);
        const page = await res.text();
        const error = page.slice(page.indexOf('id="mute-error"'));
        assert.match(error.slice(0, error.indexOf("</p>")), message);
      }
      assert.equal(await count(), before);
    });
  });
}

/**
 * Names alerts accept that no silence glob holds (empty, a control character, or past 500
 * characters once `*`, `?` and `\` are escaped), beside a name it does: `[stream, idx, names
 * oldest first, what the page says of the left-out one]`.
 */
const UNSILENCEABLE: [string, number, string[], string, string][] = [
  ["line-empty", 9004, ["", "TI-104"], "&quot;&quot;", "an empty name"],
  ["line-tab", 9005, ["TI\t104", "TI-104"], "&quot;TI\\t104&quot;", "control characters"],
  ["line-stars", 9006, ["*".repeat(256), "TI-104"], "*".repeat(256), "longer than the 500"],
];

for (const target of testTargets()) {
  describe(`muting a sensor some alerts named as no silence can on ${target.kind}`, () => {
    let db: TestDatabase;
    let app: ReturnType<typeof createBackendApp>;

    before(async () => {
      db = await target.open();
      app = createBackendApp({ database: db, clock: { now: () => NOW } });
      const all: [string, number, string[]][] = [
        ...UNSILENCEABLE.map(([s, i, n]): [string, number, string[]] => [s, i, n]),
        // Only ever named as no silence can: nothing to mute it by.
        ["line-blank", 9007, [""]],
      ];
      for (const [stream, idx, names] of all) {
        for (const [n, name] of names.entries()) {
          const start = new Date(Date.parse("2026-11-24T08:00:00Z") + n * 1_800_000);
          const alert = alertOf(stream, idx, name, start.toISOString());
          const stored = await app.request("/api/v1/alert", post(alert));
          assert.equal(stored.status, 201, await stored.text());
          const judged = await app.request(
            `/api/v1/incidents/${alert.incident_id}/verdict`,
            post({ verdict: "false_positive", by: "Ana" }),
          );
          assert.equal(judged.status, 201, await judged.text());
        }
      }
    });
    after(() => db.dispose());

    test("the mute covers the names a silence holds and says which it leaves out, and why", async () => {
      const report = await (await app.request("/api/v1/quality?weeks=1")).json();
      const page = await (await app.request("/quality?weeks=1")).text();
      for (const [stream, idx, names, shown, why] of UNSILENCEABLE) {
        // The API lists every name the sensor had, the left-out one too.
        const entry = report.false_positive_sensors.find(
          (s: { stream_id: string }) => s.stream_id === stream,
        );
        assert.deepEqual(entry.names, [...names].sort(), `${stream}: every name in the API`);
        const fields = muteForm(page, stream, idx);
        const res = await app.request("/quality/mute", {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams([
            ...fields,
            ["duration", "8h"],
            ["reason", "noisy"],
            ["by", "Ana"],
          ]).toString(),
        });
        const answer = await res.text();
        assert.equal(
          res.status,
          303,
          `${stream}: muted, not refused: ${/Nothing was muted: [^<]*/.exec(answer)?.[0]}`,
        );
        assert.deepEqual(
          fields.filter(([k]) => k === "sensor"),
          [["sensor", "TI-104"]],
          `${stream}: the form sends the name a silence holds`,
        );
        const from = page.indexOf(`<tr data-stream="${stream}" data-feature-idx="${idx}">`);
        const row = page.slice(from, page.indexOf("</tr>", from));
        const leftOut = /<small class="left-out">(.*?)<\/small>/s.exec(row)?.[1] ?? "";
        assert.ok(leftOut.includes(shown), `${stream}: the row names ${shown}: ${leftOut}`);
        assert.ok(leftOut.includes(why), `${stream}: the row says why: ${leftOut}`);
        assert.doesNotMatch(row, /\t/, `${stream}: no raw tab on the page`);
        const location = res.headers.get("location")!;
        const id = location.split("silence=")[1];
        const next = alertOf(stream, idx, "TI-104", "2026-11-24T10:30:00Z");
        assert.equal((await app.request("/api/v1/alert", post(next))).status, 201);
        const incident = await (await app.request(`/api/v1/incidents/${next.incident_id}`)).json();
        assert.equal(incident.silence_id, id, `${stream}: the next TI-104 incident is silenced`);

        // The confirmation names the muted name and the left-out one with why.
        const done = await (await app.request(location)).text();
        const said = /<p[^>]*id="mute-done"[^>]*>(.*?)<\/p>/s.exec(done)?.[1] ?? "";
        assert.ok(said.includes("TI-104"), `${stream}: ${said}`);
        assert.ok(said.includes(shown) && said.includes(why), `${stream}: ${said}`);
        // The row is muted, and says the left-out name still is not.
        const at = done.indexOf(`<tr data-stream="${stream}" data-feature-idx="${idx}">`);
        const mutedRow = done.slice(at, done.indexOf("</tr>", at));
        assert.match(mutedRow, new RegExp(`data-silence="${id}"`));
        assert.ok(mutedRow.includes(shown), `${stream}: ${mutedRow}`);
        assert.ok(!mutedRow.includes("<form"), `${stream}: no second form`);
      }
    });

    test("a sensor only ever named as no silence can says why instead of offering a mute", async () => {
      const page = await (await app.request("/quality?weeks=1")).text();
      const from = page.indexOf('<tr data-stream="line-blank" data-feature-idx="9007">');
      assert.ok(from >= 0, "line-blank is listed");
      const row = page.slice(from, page.indexOf("</tr>", from));
      assert.ok(!row.includes("<form"), `no form that would be refused: ${row}`);
      assert.match(row, /Cannot be muted/);
      assert.match(row, /&quot;&quot;.*an empty name/s);
    });
  });
}
