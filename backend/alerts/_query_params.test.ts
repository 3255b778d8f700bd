import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import * as v from "valibot";
import { HttpError } from "../../contracts/error.ts";
import { parseQuery, timeParam } from "./_query_params.ts";

// Read in a zone that is not UTC: a zone-less time must not depend on where the server runs.
let zone: string | undefined;
before(() => {
  zone = process.env.TZ;
  process.env.TZ = "Europe/Berlin";
});
after(() => {
  if (zone === undefined) delete process.env.TZ;
  else process.env.TZ = zone;
});

const schema = v.object({ from: timeParam });

/** `from=s` as parsed, or "invalid" when it answers 400 invalid_request naming `from`. */
function iso(s: string): string {
  try {
    return parseQuery(schema, { from: s }).from.toISOString();
  } catch (error) {
    assert.ok(error instanceof HttpError, String(error));
    assert.equal(error.status, 400);
    assert.equal(error.code, "invalid_request");
    assert.match(error.message, /^'from' must be /);
    return "invalid";
  }
}

test("timeParam reads a zone-less date-time as UTC, not the server's zone", () => {
  assert.equal(new Date(2026, 11, 6, 3, 30).toISOString(), "2026-12-06T02:30:00.000Z", "Berlin");
  assert.equal(iso("2026-12-06T03:30:00"), "2026-12-06T03:30:00.000Z");
  assert.equal(iso("2026-12-06T03:30"), "2026-12-06T03:30:00.000Z");
  assert.equal(iso("2026-12-06T03:30:00.123456"), "2026-12-06T03:30:00.123Z");
  assert.equal(iso("2026-12-06"), "2026-12-06T00:00:00.000Z");
});

test("timeParam takes epoch milliseconds and ISO 8601 with a zone", () => {
  assert.equal(iso("1796527800000"), "2026-12-06T03:30:00.000Z");
  assert.equal(iso("0"), "1970-01-01T00:00:00.000Z");
  assert.equal(iso("2026-12-06T03:30:00Z"), "2026-12-06T03:30:00.000Z");
  assert.equal(iso("2026-12-06T04:30:00+01:00"), "2026-12-06T03:30:00.000Z");
  assert.equal(iso("2026-12-06T04:30+0100"), "2026-12-06T03:30:00.000Z");
});

test("timeParam refuses loose text, other layouts and times that do not exist", () => {
  for (const s of [
    "-1",
    "06/12/2026",
    "foo 1",
    "2026-12-06 03:30",
    "Dec 6 2026",
    " 1796527800000",
    "1.5",
    "2026-12-06T03:30:00Z ",
    "2026-12-6",
    "2026-02-30",
    "2026-12-06T24:00",
    "2026-12-06T03:60",
    "2026-12-06T03:30:60",
    "+020000-01-01T00:00:00Z",
    "",
  ]) {
    assert.equal(iso(s), "invalid", JSON.stringify(s));
  }
});
