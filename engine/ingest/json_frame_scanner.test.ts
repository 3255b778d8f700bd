import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { HttpError } from "../../contracts/error.ts";
import { defaultFeatureNames } from "../../contracts/model.ts";
import { damaged, rootText } from "./_frame_arbitraries.ts";
import { createFeatureLayout } from "./feature_layout.ts";
import { JsonFrameScanner } from "./json_frame_scanner.ts";
import { createValibotFrameDecoder } from "./valibot_frame.ts";

const encode = (s: string) => new TextEncoder().encode(s);

type Outcome =
  | { ok: true; values: Float32Array; streamId: string; timestamp: number | undefined }
  | { ok: false; status: number; code: string; message: string };

function run(
  decode: (b: Uint8Array, into: Float32Array) => unknown,
  size: number,
  bytes: Uint8Array,
): Outcome {
  const values = new Float32Array(size);
  try {
    const out = decode(bytes, values) as { streamId: string; timestamp: number | undefined };
    return { ok: true, values, streamId: out.streamId, timestamp: out.timestamp };
  } catch (error) {
    if (!(error instanceof HttpError)) throw error;
    return { ok: false, status: error.status, code: error.code, message: error.message };
  }
}

function both(names: readonly string[]) {
  const layout = createFeatureLayout(names);
  const scanner = new JsonFrameScanner(layout);
  const reference = createValibotFrameDecoder(layout);
  return {
    scan: (bytes: Uint8Array) => run((b, into) => scanner.scan(b, into), layout.size, bytes),
    spec: (bytes: Uint8Array) => run((b, into) => reference.decode(b, into), layout.size, bytes),
  };
}

function assertSameOutcome(scan: Outcome, spec: Outcome, text: string) {
  assert.equal(
    scan.ok,
    spec.ok,
    `accept/reject differs for ${text}: ${JSON.stringify([scan, spec])}`,
  );
  if (!scan.ok && !spec.ok) {
    assert.equal(scan.code, spec.code, `code differs for ${text}`);
    if (spec.status === 422)
      assert.equal(scan.message, spec.message, `message differs for ${text}`);
  }
  if (scan.ok && spec.ok) {
    assert.equal(scan.streamId, spec.streamId);
    assert.equal(scan.timestamp, spec.timestamp);
    for (let i = 0; i < spec.values.length; i++) {
      assert.ok(
        Object.is(scan.values[i], spec.values[i]),
        `value ${i}: ${scan.values[i]} vs ${spec.values[i]} in ${text}`,
      );
    }
  }
}

const plainNames = defaultFeatureNames(6);
const exoticNames = ["température", 'a"b', "back\\slash", "10", "x y", "feature_1", "ünï"];

for (const [label, names] of [
  ["feature_N names", plainNames],
  ["exotic names", exoticNames],
] as const) {
  test(`jsonFrameScanner agrees with JSON.parse + valibot on random frames (${label})`, () => {
    const { scan, spec } = both(names);
    fc.assert(
      fc.property(rootText(names), (text) =>
        assertSameOutcome(scan(encode(text)), spec(encode(text)), text),
      ),
      { numRuns: 3000 },
    );
  });
}

test("jsonFrameScanner rejects exactly the bytes JSON.parse rejects", () => {
  const { scan, spec } = both(plainNames);
  fc.assert(
    fc.property(damaged(rootText(plainNames)), (bytes) => {
      const a = scan(bytes);
      const b = spec(bytes);
      const text = new TextDecoder().decode(bytes);
      assert.equal(!a.ok && a.code === "invalid_json", !b.ok && b.code === "invalid_json", text);
      // A damaged body that still parses may have gained a duplicate key; otherwise all agree.
      if (!(!a.ok && a.code === "frame_duplicate_features")) assertSameOutcome(a, b, text);
    }),
    { numRuns: 3000 },
  );
});

test("jsonFrameScanner judges a repeated feature by its last value, as JSON.parse keeps it", () => {
  const { scan, spec } = both(plainNames);
  const rest = plainNames
    .slice(1)
    .map((n) => `"${n}":1`)
    .join(",");
  for (const [first, last] of [
    ["1", "[]"],
    ["[]", "1"],
    ["1e999", "null"],
    ["2", "3"],
  ]) {
    const text = `{"data":{"${plainNames[0]}":${first},"${plainNames[0]}":${last},${rest}}}`;
    const a = scan(encode(text));
    const b = spec(encode(text));
    // JSON.parse cannot see the repetition the scanner refuses; what both judge must agree.
    if (!a.ok && a.code === "frame_duplicate_features") assert.ok(b.ok, text);
    else assertSameOutcome(a, b, text);
  }
});

test("jsonFrameScanner rounds every number form as Math.fround(JSON.parse(text))", () => {
  const { scan } = both(["v"]);
  const forms = fc.oneof(
    fc.double({ noNaN: true, noDefaultInfinity: true, min: -3e38, max: 3e38 }).map(String),
    fc.stringMatching(/^-?(?:0|[1-9][0-9]{0,30})(?:\.[0-9]{1,30})?(?:[eE][+-]?[0-9]{1,2})?$/),
  );
  fc.assert(
    fc.property(forms, (num) => {
      const expected = Math.fround(JSON.parse(num));
      const out = scan(encode(`{"data":{"v":${num}}}`));
      if (Math.abs(JSON.parse(num)) > 3.4028234663852886e38) assert.equal(out.ok, false);
      else
        assert.ok(out.ok && Object.is(out.values[0], expected), `${num}: ${JSON.stringify(out)}`);
    }),
    { numRuns: 20_000 },
  );
});

test("jsonFrameScanner rounds float32 midpoints like JSON.parse then fround", () => {
  const { scan } = both(["v"]);
  // Exactly halfway between two float32 values, and a hair either side of it.
  for (const text of [
    "16777217",
    "16777217.0000000001",
    "16777216.9999999999",
    "1.00000005960464477539062",
    "1.000000059604644775390625",
    "1.00000005960464477539063",
  ]) {
    const out = scan(encode(`{"data":{"v":${text}}}`));
    assert.ok(out.ok && Object.is(out.values[0], Math.fround(JSON.parse(text))), text);
  }
});

test("jsonFrameScanner rejects a duplicated feature key naming it", () => {
  const { scan } = both(plainNames);
  const body = `{"data":{${plainNames.map((n, i) => `"${n}":${i}`).join(",")},"feature_2":7,"feature\\u005f2":8}}`;
  const out = scan(encode(body));
  assert.equal(out.ok, false);
  assert.ok(!out.ok && out.code === "frame_duplicate_features" && out.status === 422);
  assert.match(!out.ok ? out.message : "", /duplicated features: "feature_2", "feature_2"$/);
});

test("jsonFrameScanner rejects a repeated top-level key as a shape problem", () => {
  const { scan } = both(["a"]);
  const out = scan(encode('{"data":{"a":1},"data":{"a":2}}'));
  assert.ok(!out.ok && out.code === "frame_invalid_shape");
});

test("jsonFrameScanner reports the contract's problems for typical mistakes", () => {
  const { scan } = both(plainNames);
  const data = (extra = "", skip = -1) =>
    plainNames
      .filter((_, i) => i !== skip)
      .map((n) => `"${n}":1`)
      .join(",") + extra;
  const cases: [string, string, RegExp][] = [
    [`{"data":{${data()}},"timestamp":"2026-11-24T09:00:00Z","stream_id":"s"}`, "ok", /.*/],
    [`{"data":{${data("", 3)}}}`, "frame_missing_features", /missing features: "feature_3"/],
    [
      `{"data":{${data(',"feature_9":1')}}}`,
      "frame_unknown_features",
      /unknown features: "feature_9"/,
    ],
    [`{"data":{${data(',"feature_9":1')}},"zz":1}`, "frame_invalid_shape", /"zz"/],
    [
      `{"data":{${data().replace('"feature_4":1', '"feature_4":"1"')}}}`,
      "frame_invalid_value",
      /"feature_4"/,
    ],
    [
      `{"data":{${data().replace('"feature_4":1', '"feature_4":1e999')}}}`,
      "frame_invalid_value",
      /"feature_4"/,
    ],
    [`{"data":{${data()}},"timestamp":"soon"}`, "frame_invalid_timestamp", /timestamp/],
    [
      `{"data":{${data()}},"timestamp":1796627557}`,
      "frame_invalid_timestamp",
      /^timestamp 1796627557 looks like epoch seconds/,
    ],
    [
      `{"data":{${data()}},"timestamp":1796627557.123}`,
      "frame_invalid_timestamp",
      /^timestamp 1796627557.123 looks like epoch seconds.*; send 1796627557123 if it is epoch seconds/,
    ],
    [`{"data":{${data()}},"stream_id":"a b"}`, "frame_invalid_stream_id", /stream_id/],
    [`{"data":{${data()}}} x`, "invalid_json", /JSON/],
    [`{"data":{${data()}},}`, "invalid_json", /JSON/],
    [`{"data":{${data()}}`, "invalid_json", /JSON/],
    ["", "invalid_json", /JSON/],
    [`{"data":{${data().replace('"feature_4":1', '"feature_4":NaN')}}}`, "invalid_json", /JSON/],
    [`${"[".repeat(100_000)}${"]".repeat(100_000)}`, "frame_invalid_shape", /"data", "0"/],
  ];
  for (const [body, code, message] of cases) {
    const out = scan(encode(body));
    if (code === "ok") assert.ok(out.ok, body);
    else {
      assert.ok(!out.ok, body.slice(0, 80));
      assert.equal(out.code, code, body.slice(0, 80));
      assert.match(out.message, message);
    }
  }
});

test("jsonFrameScanner clips a client's long key in its message, as the contract path does", () => {
  const { scan, spec } = both(plainNames);
  const data = plainNames.map((n) => `"${n}":1`).join(",");
  const key = "k".repeat(100_000);
  for (const text of [
    `{"data":{${data},"${key}":1}}`,
    `{"data":{${data}},"${key}":1}`,
    `{"data":{${data}},"${"\ud83d\ude00".repeat(100)}":1}`,
  ]) {
    const out = scan(encode(text));
    assertSameOutcome(out, spec(encode(text)), text.slice(0, 80));
    assert.ok(!out.ok && out.status === 422);
    assert.ok(!out.ok && out.message.length < 300, `${!out.ok && out.message.length} characters`);
    assert.match(!out.ok ? out.message : "", /… \((100000|200) characters\)"/);
  }
});

test("jsonFrameScanner names the first five unknown features and counts the rest, as the contract path does", () => {
  const { scan, spec } = both(plainNames);
  const data = plainNames.map((n) => `"${n}":1`).join(",");
  // Integer-like keys first, ascending (as `for...in` lists them); a repeated key counts once.
  const extra = ["zz", "7", "ab", "3", "q", "r", "zz", "s"].map((k) => `"${k}":1`).join(",");
  const text = `{"data":{${data},${extra}}}`;
  const out = scan(encode(text));
  assertSameOutcome(out, spec(encode(text)), text);
  assert.ok(!out.ok && out.code === "frame_unknown_features");
  assert.equal(!out.ok && out.message, 'unknown features: "3", "7", "zz", "ab", "q" (+2 more)');
});
