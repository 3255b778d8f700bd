import assert from "node:assert/strict";
import { test } from "node:test";
import * as v from "valibot";
import { isStorableInstant, isStorableText, storableText } from "./storable.ts";

test("text with NUL or an unpaired surrogate is not storable; pairs and ordinary text are", () => {
  for (const s of ["", "operator", "<b>é</b>", "pump 😀 ok", "\u00a0tab\tline\n"]) {
    assert.ok(isStorableText(s), JSON.stringify(s));
  }
  for (const s of ["a\0b", "\0", "x\ud800y", "\ud800", "x\udc00", "\udc00\ud800", "😀\ud83d"]) {
    assert.ok(!isStorableText(s), JSON.stringify(s));
  }
  const r = v.safeParse(v.pipe(v.string(), storableText), "a\0b");
  assert.equal(r.success, false);
  assert.equal(r.issues?.[0].message, "text without NUL characters or unpaired surrogates");
});

test("instants within years 1..9999 are storable", () => {
  assert.ok(isStorableInstant(new Date(0)));
  assert.ok(isStorableInstant(new Date("9999-12-31T23:59:59.999Z")));
  assert.ok(isStorableInstant(new Date("0001-01-01T00:00:00Z")));
  assert.ok(!isStorableInstant(new Date("+010000-01-01T00:00:00Z")));
  assert.ok(!isStorableInstant(new Date("0000-12-31T23:59:59Z")));
  assert.ok(!isStorableInstant(new Date(999_999_999_999_999)));
  assert.ok(!isStorableInstant(new Date(Number.NaN)));
});
