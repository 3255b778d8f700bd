import assert from "node:assert/strict";
import { test } from "node:test";
import { clipInput, QUOTE_LIMIT } from "./_clip_input.ts";

test("clipInput keeps a text up to the limit and clips a longer one, naming its length", () => {
  assert.equal(clipInput(""), "");
  assert.equal(clipInput("x".repeat(QUOTE_LIMIT)), "x".repeat(QUOTE_LIMIT));
  assert.equal(clipInput("x".repeat(4_000_000)), `${"x".repeat(128)}… (4000000 characters)`);
});

test("clipInput does not cut a surrogate pair in half", () => {
  const text = `${"x".repeat(QUOTE_LIMIT - 1)}😀😀`;
  assert.equal(clipInput(text), `${"x".repeat(QUOTE_LIMIT - 1)}… (${text.length} characters)`);
  assert.equal(clipInput(`x${"😀".repeat(100)}`), `x${"😀".repeat(63)}… (201 characters)`);
});
