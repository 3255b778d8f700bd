// The Quality page's noisy rows already muted, and a Stream filter that is not one, from a real database.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { post } from "../alerts/_fixtures.ts";
import { createBackendApp } from "../app.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";
import { judgedIncident } from "../incidents/_fixtures.ts";

const NOW = Date.parse("2026-11-24T10:00:00Z");
const SENSOR = "TI-101";
const HOSTILE = '<script>alert("x")</script>';
const ESCAPED = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;";

let db: TestDatabase;
let app: ReturnType<typeof createBackendApp>;

before(async () => {
  db = await testTargets()[0].open();
  app = createBackendApp({ database: db, clock: { now: () => NOW } });
  await judgedIncident(app, { streamId: "line-a", sensor: { idx: 9, severity: 10, name: SENSOR } });
});
after(() => db.dispose());

/** The noisy table's row of line-a's TI-101. */
const row = (page: string) => {
  const from = page.indexOf('<tr data-stream="line-a" data-feature-idx="9">');
  assert.ok(from >= 0, "the row is listed");
  return page.slice(from, page.indexOf("</tr>", from));
};

test("a Quality row whose sensor an active silence mutes says until when and by whom instead of offering the form", async () => {
  assert.match(row(await (await app.request("/quality?weeks=4")).text()), /Mute this sensor/);
  const mute = new URLSearchParams({
    stream: "line-a",
    sensor: SENSOR,
    duration: "8h",
    reason: "drifts",
    by: HOSTILE,
    weeks: "4",
  });
  const res = await app.request("/quality/mute", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: mute.toString(),
  });
  assert.equal(res.status, 303);
  const id = res.headers.get("location")!.split("silence=")[1];

  const html = row(await (await app.request("/quality?weeks=4")).text());
  assert.ok(!html.includes("<form"), "no second mute offered");
  assert.ok(!html.includes(HOSTILE));
  const text = html.replace(/<[^>]+>/g, "");
  assert.ok(text.includes(`Muted until 2026-11-24 18:00:00Z by ${ESCAPED} (see Silences)`), text);
  assert.ok(html.includes(`<a href="/silences#silence-${id}">see Silences</a>`));

  // Expired, the form is back.
  const expired = await app.request(`/api/v1/silences/${id}`, {
    ...post({ by: "Ana" }),
    method: "DELETE",
  });
  assert.ok(expired.status < 300, await expired.text());
  assert.match(row(await (await app.request("/quality?weeks=4")).text()), /Mute this sensor/);
});

test("a Stream filter that is not a stream id shows the Quality page again, the message beside the field", async () => {
  const res = await app.request(`/quality?weeks=4&stream_id=${encodeURIComponent(HOSTILE)}`);
  assert.equal(res.status, 400);
  const page = await res.text();
  assert.match(page, /<h1>Quality<\/h1>/);
  assert.ok(!page.includes(HOSTILE));
  const input = /<input id="quality-stream"[^>]*>/.exec(page)?.[0] ?? "";
  assert.ok(input.includes(`value="${ESCAPED}"`), input);
  assert.ok(input.includes('aria-invalid="true"'), input);
  assert.ok(input.includes('aria-describedby="quality-stream-error"'), input);
  const error = /<p[^>]*id="quality-stream-error"[^>]*>([^<]*)<\/p>/.exec(page);
  assert.ok(error, "the message is beside the field");
  assert.match(error[1], /^Not filtered: “Stream” must be a stream id/);
  // The rest of the page is there: every stream's report.
  assert.match(page, /id="quality-totals"/);
});
