// A request body whose read fails while the backend is stopping (Deno's shutdown cuts it) is answered 503 shutting_down, which an engine sends again, not 400, which it drops.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { ourAlert } from "./alerts/_fixtures.ts";
import { createBackendApp } from "./app.ts";
import { type TestDatabase, testTargets } from "./db/_test_databases.ts";

let db: TestDatabase;
let draining = false;
let app: ReturnType<typeof createBackendApp>;

before(async () => {
  db = await testTargets()[0].open();
  app = createBackendApp({ database: db, isDraining: () => draining });
});
after(() => db.dispose());

/** A POST of half an alert whose body stream then fails, as a read cut under it does. */
function cutAlert(): Request {
  const whole = new TextEncoder().encode(JSON.stringify(ourAlert()));
  const half = whole.subarray(0, 40);
  let sent = false;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent) controller.error(new Error("connection closed"));
      else {
        sent = true;
        controller.enqueue(half);
      }
    },
  });
  return new Request("http://backend/api/v1/alert", {
    method: "POST",
    // Its length said, as an engine's is: the read is the route's, not the body limit's.
    headers: { "content-type": "application/json", "content-length": String(whole.length) },
    body,
    duplex: "half",
  } as RequestInit);
}

test("a body cut while the backend runs is the client's doing: 400 body_incomplete", async () => {
  draining = false;
  const res = await app.request(cutAlert());
  assert.equal(res.status, 400);
  assert.equal((await res.json()).error, "body_incomplete");
});

test("a body cut while the backend stops is answered 503 shutting_down with Retry-After, so the engine sends the alert again", async () => {
  draining = true;
  const res = await app.request(cutAlert());
  assert.equal(res.status, 503);
  assert.equal(res.headers.get("retry-after"), "1");
  assert.equal((await res.json()).error, "shutting_down");
});
