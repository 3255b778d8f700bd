import assert from "node:assert/strict";
import { test } from "node:test";
import { Hono } from "hono";
import { answerUnrouted, routedMethods } from "./unrouted.ts";

function app(): Hono {
  const a = new Hono();
  a.use(async (_c, next) => next());
  a.use("/items/*", async (_c, next) => next());
  a.get("/items", (c) => c.text("list"));
  a.post("/items", (c) => c.text("made"));
  a.post("/items/:id/ack", (c) => c.text("acked"));
  a.on(["PUT", "DELETE"], "/items/:id", (c) => c.text("changed"));
  a.notFound(answerUnrouted(a));
  return a;
}

test("routedMethods names a path's methods, HEAD with GET, and none for middleware alone", () => {
  const a = app();
  assert.deepEqual(routedMethods(a, "/items"), ["GET", "HEAD", "POST"]);
  assert.deepEqual(routedMethods(a, "/items/7/ack"), ["POST"]);
  assert.deepEqual(routedMethods(a, "/items/7"), ["PUT", "DELETE"]);
  assert.deepEqual(routedMethods(a, "/items/7/other"), []);
  assert.deepEqual(routedMethods(a, "/nope"), []);
});

test("a routed path asked with another method is 405 with Allow; an unrouted one is 404", async () => {
  const a = app();
  const wrong = await a.request("/items/7/ack", { method: "GET" });
  assert.equal(wrong.status, 405);
  assert.equal(wrong.headers.get("allow"), "POST");
  assert.deepEqual(await wrong.json(), {
    error: "method_not_allowed",
    message: "GET is not allowed on /items/7/ack; allowed: POST",
  });
  const patch = await a.request("/items", { method: "PATCH" });
  assert.equal(patch.status, 405);
  assert.equal(patch.headers.get("allow"), "GET, HEAD, POST");
  const missing = await a.request("/items/7/other", { method: "POST" });
  assert.equal(missing.status, 404);
  assert.equal((await missing.json()).error, "not_found");
  assert.equal(missing.headers.get("allow"), null);
  // Served methods are unchanged, HEAD included.
  assert.equal((await a.request("/items", { method: "HEAD" })).status, 200);
  assert.equal(await (await a.request("/items/7", { method: "DELETE" })).text(), "changed");
});

test("a handler's own not-found stays a 404 for its method", async () => {
  const a = new Hono();
  a.get("/items/:id", (c) => c.notFound());
  a.notFound(answerUnrouted(a));
  const res = await a.request("/items/7");
  assert.equal(res.status, 404);
  assert.equal((await res.json()).error, "not_found");
});
