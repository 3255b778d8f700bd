// The acknowledge form when someone acknowledged first: says so, records nothing, and keeps the note typed.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { post } from "../alerts/_fixtures.ts";
import { createBackendApp } from "../app.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";
import { lifecycle } from "../incidents/_fixtures.ts";

const HOSTILE_NOTE = 'valve <3> shut, "checked"';

let db: TestDatabase;
let app: ReturnType<typeof createBackendApp>;

before(async () => {
  db = await testTargets()[0].open();
  app = createBackendApp({ database: db });
});
after(() => db.dispose());

function form(fields: Record<string, string>): RequestInit {
  return {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(fields).toString(),
  };
}

async function openIncident(): Promise<string> {
  const id = crypto.randomUUID();
  assert.equal((await app.request("/api/v1/alert", post(lifecycle(id)[0]))).status, 201);
  return id;
}

/** Acknowledges through the API, as another operator's tool would. */
async function apiAck(id: string, by: string, note: string) {
  const res = await app.request(`/api/v1/incidents/${id}/ack`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ by, note }),
  });
  assert.equal(res.status, 201);
}

test("the acknowledge form says who acknowledged first, records nothing and keeps the note typed", async () => {
  const id = await openIncident();
  // Ana opens the page: not acknowledged yet, the form offered.
  assert.match(await (await app.request(`/incidents/${id}`)).text(), /<form [^>]*\/ack"/);
  // Meanwhile cy acknowledges through the API; then Ana sends the form with her note.
  await apiAck(id, "cy", "cy took it");
  const res = await app.request(`/incidents/${id}/ack`, form({ by: "Ana", note: HOSTILE_NOTE }));
  assert.equal(res.status, 409, "not the redirect that says it was recorded");
  const page = await res.text();
  assert.ok(!page.includes("Acknowledgement recorded"), "never says it was recorded");
  // Said where the form was, announced, and focused by the console's script (tabindex -1).
  const said = /<p class="error" role="alert" id="ack-error" tabindex="-1">(.*?)<\/p>/s.exec(page);
  assert.ok(
    said,
    page.slice(page.indexOf('id="ack-heading"'), page.indexOf('id="ack-heading"') + 900),
  );
  const [ack] =
    await db.sql`SELECT acked_by, note, acked_at FROM incident_ack WHERE incident_id = ${id}`;
  const at = (ack.acked_at as Date).toISOString();
  assert.match(
    said[1],
    new RegExp(`^Already acknowledged by <bdi>cy</bdi> at <time datetime="${at}">`),
  );
  assert.match(
    said[1].replace(/<[^>]+>/g, ""),
    /: your note was not recorded; it is kept below\.$/,
  );
  // The note as typed (escaped), in a field named by its label and described by the message.
  assert.match(
    page,
    /<label for="ack-note">Your note \(not recorded\)<\/label><br\/?><textarea id="ack-note"[^>]* aria-describedby="ack-error"[^>]*>valve &lt;3&gt; shut, &quot;checked&quot;<\/textarea>/,
  );
  assert.match(page, /Acknowledged by <strong><bdi>cy<\/bdi><\/strong> at /);
  // The first acknowledgement stands alone: Ana's note is stored nowhere.
  assert.equal(ack.acked_by, "cy");
  assert.equal(ack.note, "cy took it");
  const [{ n }] =
    await db.sql`SELECT count(*)::int AS n FROM incident_ack WHERE incident_id = ${id}`;
  assert.equal(n, 1);
  // The API's contract is unchanged: first wins, 200 with the first.
  const again = await app.request(`/api/v1/incidents/${id}/ack`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ by: "Ana", note: "mine" }),
  });
  assert.equal(again.status, 200);
  assert.equal((await again.json()).acknowledged.by, "cy");
});

test("the acknowledge form says only that it was not recorded when no note was typed", async () => {
  const id = await openIncident();
  await apiAck(id, "cy", "");
  const res = await app.request(`/incidents/${id}/ack`, form({ by: "Ana", note: "" }));
  assert.equal(res.status, 409);
  const page = await res.text();
  const said = /<p class="error" role="alert" id="ack-error" tabindex="-1">(.*?)<\/p>/s.exec(page);
  assert.ok(said);
  assert.match(
    said[1].replace(/<[^>]+>/g, ""),
    /^Already acknowledged by cy at .*: yours was not recorded\.$/,
  );
  assert.ok(!page.includes("Your note (not recorded)"));
});

test("the acknowledge form sent twice by the same person with the same note is the one recorded", async () => {
  const id = await openIncident();
  const first = await app.request(`/incidents/${id}/ack`, form({ by: "Ana", note: "on it" }));
  assert.equal(first.status, 303);
  // A second send of the same form (a double click, a resend after a slow answer): already hers.
  const second = await app.request(`/incidents/${id}/ack`, form({ by: "Ana", note: "on it" }));
  assert.equal(second.status, 303);
  assert.equal(second.headers.get("location"), `/incidents/${id}?done=ack`);
});
