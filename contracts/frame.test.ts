import assert from "node:assert/strict";
import { test } from "node:test";
import * as v from "valibot";
import { classifyFrameIssues, createFrameSchema, FLOAT32_MAX, parseTimestamp } from "./frame.ts";
import { defaultFeatureNames } from "./model.ts";

const names = defaultFeatureNames(6);
const schema = createFrameSchema(names);
const data = () => Object.fromEntries(names.map((n, i) => [n, i / 10]));
const problem = (input: unknown) => {
  const result = v.safeParse(schema, input);
  assert.equal(result.success, false, "frame should be rejected");
  return classifyFrameIssues(result.issues!);
};

test("frame schema accepts the upstream shape and defaults nothing it was not given", () => {
  const out = v.parse(schema, { data: data() });
  assert.deepEqual(out, { data: data() });
});

test("frame schema accepts ISO and epoch timestamps and a stream id", () => {
  const iso = v.parse(schema, {
    data: data(),
    timestamp: "2026-11-24T09:00:00.500Z",
    stream_id: "line-1",
  });
  assert.equal(iso.timestamp, Date.UTC(2026, 10, 24, 9, 0, 0, 500));
  assert.equal(iso.stream_id, "line-1");
  const epoch = v.parse(schema, { data: data(), timestamp: 1_700_000_000_000 });
  assert.equal(epoch.timestamp, 1_700_000_000_000);
});

test("frame schema rejects a missing feature naming it", () => {
  const d = data();
  delete d.feature_3;
  const p = problem({ data: d });
  assert.equal(p.code, "frame_missing_features");
  assert.deepEqual(p.keys, ["feature_3"]);
  assert.match(p.message, /missing features: "feature_3"/);
});

test("frame schema rejects an unknown feature naming it", () => {
  const p = problem({ data: { ...data(), feature_99: 1 } });
  assert.equal(p.code, "frame_unknown_features");
  assert.deepEqual(p.keys, ["feature_99"]);
});

test("frame schema rejects non-numbers and non-finite values with their keys", () => {
  for (const bad of ["1", null, true, [], {}, Number.NaN, Number.POSITIVE_INFINITY]) {
    const p = problem({ data: { ...data(), feature_2: bad } });
    assert.equal(p.code, "frame_invalid_value", `value ${String(bad)}`);
    assert.deepEqual(p.keys, ["feature_2"]);
  }
});

test("frame schema rejects wrong shapes", () => {
  for (const bad of [
    null,
    [],
    "x",
    1,
    { data: [] },
    { data: null },
    {},
    { data: data(), extra: 1 },
  ]) {
    assert.equal(problem(bad).code, "frame_invalid_shape", JSON.stringify(bad));
  }
});

test("frame schema rejects bad timestamps and stream ids", () => {
  for (const ts of ["yesterday", "2026-11-24", "2026-13-01T00:00:00Z", -1, true, 1e20]) {
    assert.equal(
      problem({ data: data(), timestamp: ts }).code,
      "frame_invalid_timestamp",
      String(ts),
    );
  }
  for (const id of ["", "a b", "x".repeat(129), 5, "ü"]) {
    assert.equal(
      problem({ data: data(), stream_id: id }).code,
      "frame_invalid_stream_id",
      String(id),
    );
  }
});

test("frame problems are reported in a fixed order and counted", () => {
  const d: Record<string, unknown> = data();
  delete d.feature_0;
  delete d.feature_1;
  delete d.feature_5;
  d.bogus = 1;
  const p = problem({ data: d });
  assert.equal(p.code, "frame_unknown_features", "unknown keys outrank missing ones");
  const onlyMissing = { ...data() } as Record<string, unknown>;
  for (const n of names) delete onlyMissing[n];
  const q = classifyFrameIssues(v.safeParse(schema, { data: onlyMissing }).issues!, 2);
  assert.equal(q.count, 6);
  assert.deepEqual(q.keys, ["feature_0", "feature_1"]);
  assert.match(q.message, /\(\+4 more\)/);
});

test("parseTimestamp accepts zones and rejects dates without one", () => {
  assert.equal(parseTimestamp("2026-11-24T10:00:00+01:00"), Date.UTC(2026, 10, 24, 9));
  assert.equal(parseTimestamp("2026-11-24T09:00:00"), undefined);
  assert.equal(parseTimestamp(Number.NaN), undefined);
});

test("parseTimestamp refuses what does not exist or cannot be a frame's time, instead of rolling it over", () => {
  assert.equal(parseTimestamp("2024-02-29T00:00:00Z"), Date.UTC(2024, 1, 29));
  assert.equal(parseTimestamp("2026-12-31T23:59:59.999Z"), Date.UTC(2026, 11, 31, 23, 59, 59, 999));
  assert.equal(parseTimestamp("1970-01-01T00:00:00Z"), 0);
  assert.equal(parseTimestamp("9999-12-31T23:59:59.999Z"), 253402300799999);
  assert.equal(parseTimestamp(1_700_000_000_000), 1_700_000_000_000);
  for (const bad of [
    "2024-02-30T00:00:00Z",
    "2023-02-29T00:00:00Z",
    "2026-13-01T00:00:00Z",
    "2026-00-10T00:00:00Z",
    "2026-11-24T24:00:00Z",
    "2026-11-24T10:60:00Z",
    "2026-11-24T10:00:60Z",
    "1969-12-31T23:59:59Z",
    "0000-01-01T00:00:00Z",
    1_700_000_000_000.25,
    -5,
    253402300800000,
  ]) {
    assert.equal(parseTimestamp(bad), undefined, String(bad));
  }
});

test("parseTimestamp refuses a number below 1e11 (epoch seconds, a relative time), not ISO text of those years", () => {
  for (const seconds of [1796627557, 1_700_000_000, 99_999_999_999, 1000, 0]) {
    assert.equal(parseTimestamp(seconds), undefined, String(seconds));
  }
  assert.equal(parseTimestamp(100_000_000_000), 100_000_000_000);
  assert.equal(parseTimestamp("1973-03-03T09:46:40Z"), 100_000_000_000);
  assert.equal(parseTimestamp("1970-01-21T19:03:47.557Z"), 1796627557);
});

test("frame schema says a timestamp in epoch seconds looks like epoch seconds, and what to send", () => {
  const says = (ts: unknown) => {
    const p = problem({ data: data(), timestamp: ts });
    assert.equal(p.code, "frame_invalid_timestamp", String(ts));
    assert.deepEqual(p.keys, ["timestamp"]);
    return p.message;
  };
  const rule = "a number is read as epoch milliseconds, from 100000000000 (1973-03-03) on";
  assert.equal(
    says(1796627557),
    `timestamp 1796627557 looks like epoch seconds (or a relative time): ${rule}; send 1796627557000 if it is epoch seconds, or ISO 8601 with a zone`,
  );
  assert.equal(
    says(1796627557.25),
    `timestamp 1796627557.25 looks like epoch seconds (or a relative time): ${rule}; send 1796627557250 if it is epoch seconds, or ISO 8601 with a zone`,
  );
  // No multiple to suggest where even that would be before 1973.
  assert.equal(
    says(1000),
    `timestamp 1000 looks like epoch seconds (or a relative time): ${rule}; send epoch milliseconds or ISO 8601 with a zone`,
  );
  for (const ts of [-1, 1e20, "1796627557", "soon"]) {
    assert.equal(
      problem({ data: data(), timestamp: ts }).message,
      'timestamp must be ISO 8601 with a zone or epoch milliseconds: "timestamp"',
      String(ts),
    );
  }
});

test("frame schema rejects values beyond the float32 range, keeps its edge", () => {
  for (const bad of [3.5e38, -1e300, Number.MAX_VALUE]) {
    const p = problem({ data: { ...data(), feature_1: bad } });
    assert.equal(p.code, "frame_invalid_value", String(bad));
    assert.deepEqual(p.keys, ["feature_1"]);
  }
  const edge = v.parse(schema, { data: { ...data(), feature_1: -FLOAT32_MAX } });
  assert.equal(Math.fround(edge.data.feature_1), -FLOAT32_MAX);
});

test("frame problems name up to five unknown features and count them all, given the model's names", () => {
  const d: Record<string, unknown> = { ...data(), a: 1, b: 1, c: 1, d: 1, e: 1, f: 1, g: 1 };
  const result = v.safeParse(schema, { data: d });
  const p = classifyFrameIssues(result.issues!, 5, new Set(names));
  assert.equal(p.code, "frame_unknown_features");
  assert.equal(p.count, 7);
  assert.deepEqual(p.keys, ["a", "b", "c", "d", "e"]);
  assert.equal(p.message, 'unknown features: "a", "b", "c", "d", "e" (+2 more)');
});
