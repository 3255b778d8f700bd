import assert from "node:assert/strict";
import { test } from "node:test";
import * as v from "valibot";
import { ERROR_CODES, errorBodySchema, HttpError } from "./error.ts";

test("error codes are unique snake_case words", () => {
  assert.equal(new Set(ERROR_CODES).size, ERROR_CODES.length);
  for (const code of ERROR_CODES) assert.match(code, /^[a-z]+(_[a-z]+)*$/);
});

test("HttpError body validates against the error body schema", () => {
  const error = new HttpError(502, "engine_unreachable", "connect ECONNREFUSED 127.0.0.1:9000");
  assert.deepEqual(v.parse(errorBodySchema, error.body), {
    error: "engine_unreachable",
    message: "connect ECONNREFUSED 127.0.0.1:9000",
  });
  assert.equal(v.safeParse(errorBodySchema, { error: "no_such_code", message: "" }).success, false);
});

test("HttpError for a full alert outbox carries its code and Retry-After", () => {
  const error = new HttpError(503, "outbox_full", "alert outbox holds 100 undelivered alerts", {
    "Retry-After": "5",
  });
  assert.equal(v.parse(errorBodySchema, error.body).error, "outbox_full");
  assert.equal(error.headers["Retry-After"], "5");
});
