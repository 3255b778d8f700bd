// fast-check generators of JSON frame texts, valid and broken, for the equivalence and fuzz tests.
import fc from "fast-check";

/** JSON whitespace between tokens, usually none. */
const ws = fc.oneof(
  { weight: 6, arbitrary: fc.constant("") },
  { weight: 1, arbitrary: fc.constantFrom(" ", "\n", "\t", "\r\n  ", " \t\n\r ") },
);

/** Number texts in every JSON form: plain, long mantissas, exponents, -0, overflow, underflow. */
export const numberText: fc.Arbitrary<string> = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }).map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((x) => String(Math.fround(x))),
  fc
    .tuple(fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 }), fc.nat(20))
    .map(([x, d]) => x.toExponential(d).replace("e", "E")),
  fc
    .tuple(fc.float({ noNaN: true, noDefaultInfinity: true }), fc.nat(8))
    .map(([x, d]) => x.toFixed(d)),
  fc.stringMatching(/^-?(?:0|[1-9][0-9]{0,24})(?:\.[0-9]{1,24})?(?:[eE][+-]?[0-9]{1,3})?$/),
  fc.constantFrom(
    "-0",
    "0",
    "0.0",
    "-0.0e-5",
    "1e999",
    "-1e999",
    "1e-999",
    "3.4028234663852886e38",
    "-3.4028234663852886e38",
    "3.4028235e38",
    "3.40282356779733661637539395458142568448e38",
    "1.401298464324817e-45",
    "7.006492321624085e-46",
    "1.1754943508222875e-38",
    "0.000000000000000000000000000000000000000000001",
    "100000000000000000000000000000",
    "9007199254740993",
    "16777217",
    "16777217.000000000001",
    "0.1000000000000000055511151231257827021181583404541015625",
  ),
);

/** A JSON value that is not a number. */
const nonNumberText = fc.constantFrom(
  '"1"',
  '"x"',
  "null",
  "true",
  "false",
  "[]",
  "{}",
  '[1,{"a":[null]}]',
  '{"feature_0":1}',
);

/** A feature value: mostly numbers. */
export const valueText = fc.oneof(
  { weight: 12, arbitrary: numberText },
  { weight: 1, arbitrary: nonNumberText },
);

/** A JSON string literal for `name`, sometimes with characters written as \u escapes. */
export function keyText(name: string): fc.Arbitrary<string> {
  return fc.option(fc.nat(Math.max(0, name.length - 1)), { freq: 4 }).map((at) => {
    const quoted = JSON.stringify(name);
    if (at === null || name.length === 0) return quoted;
    const code = name.charCodeAt(at).toString(16).padStart(4, "0");
    return (
      JSON.stringify(name.slice(0, at)).slice(0, -1) +
      `\\u${code}` +
      JSON.stringify(name.slice(at + 1)).slice(1)
    );
  });
}

function objectText(entries: fc.Arbitrary<[fc.Arbitrary<string>, string][]>): fc.Arbitrary<string> {
  return entries.chain((list) =>
    fc
      .tuple(
        fc.tuple(...list.map(([key]) => key)),
        fc.array(ws, { minLength: list.length * 4 + 2, maxLength: list.length * 4 + 2 }),
      )
      .map(([keys, spaces]) => {
        let s = 0;
        const parts = list.map(
          ([, value], i) =>
            `${spaces[s++]}${keys[i]}${spaces[s++]}:${spaces[s++]}${value}${spaces[s++]}`,
        );
        return `${spaces[s++]}{${parts.join(",")}${parts.length === 0 ? spaces[s] : ""}}`;
      }),
  );
}

/** Unknown feature keys (none is a model name in the test layouts). */
const unknownName = fc.oneof(
  fc.constantFrom("feature_99", "x", "0", "17", "4294967295", "__proto__", "constructor", "", "é"),
  fc.string({ maxLength: 6 }).map((s) => `u_${s}`),
);

/**
 * A frame text for `names` without duplicate keys: the features in any order, sometimes some
 * missing, some unknown, odd values, an optional timestamp, stream id or extra top-level key.
 */
export function frameText(names: readonly string[]): fc.Arbitrary<string> {
  const data = fc
    .tuple(
      fc.shuffledSubarray([...names], { minLength: Math.max(0, names.length - 2) }),
      // Up to 8: more than the 5 keys a message names.
      fc.uniqueArray(unknownName, { maxLength: 8 }).map((u) => u.filter((k) => !names.includes(k))),
      fc.boolean(),
    )
    .chain(([known, unknown, allNumbers]) =>
      fc.tuple(
        ...[...known, ...unknown].map((name) =>
          fc.tuple(fc.constant(keyText(name)), allNumbers ? numberText : valueText),
        ),
      ),
    )
    .chain((entries) => objectText(fc.constant(entries as [fc.Arbitrary<string>, string][])));
  const dataValue = fc.oneof(
    { weight: 12, arbitrary: data },
    { weight: 1, arbitrary: nonNumberText },
  );
  const timestamp = fc.constantFrom(
    "1700000000000",
    "1796627557",
    "1796627557.5",
    "0",
    '"2026-11-24T09:00:00.500Z"',
    '"2026-11-24T09:00:00+01:00"',
    '"yesterday"',
    "-1",
    "1e20",
    "null",
    "1.5",
  );
  const streamId = fc.constantFrom('"line-1"', '"a b"', '""', "5", '"ok.stream:1"', "null");
  return fc
    .record(
      { data: dataValue, timestamp, stream_id: streamId, extra: fc.constant("1") },
      { requiredKeys: [] },
    )
    .chain((fields) => {
      const order = Object.keys(fields) as (keyof typeof fields)[];
      return fc
        .shuffledSubarray(order, { minLength: order.length })
        .chain((shuffled) =>
          objectText(
            fc.constant(
              shuffled.map((key): [fc.Arbitrary<string>, string] => [keyText(key), fields[key]!]),
            ),
          ),
        );
    });
}

/** Any JSON root: usually a frame, sometimes an array, a scalar or an empty object. */
export function rootText(names: readonly string[]): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 20, arbitrary: frameText(names) },
    {
      weight: 1,
      arbitrary: fc.constantFrom("[]", " [ ] ", "[1]", '[{"data":{}}]', "1", '"s"', "null", "{}"),
    },
  );
}

/** Byte-level damage to a text: truncate, insert, delete or replace a byte. */
export function damaged(text: fc.Arbitrary<string>): fc.Arbitrary<Uint8Array> {
  return text.chain((t) => {
    const bytes = new TextEncoder().encode(t);
    return fc
      .tuple(
        fc.nat(bytes.length),
        fc.integer({ min: 0, max: 255 }),
        fc.constantFrom("cut", "insert", "delete", "replace"),
      )
      .map(([at, byte, how]) => {
        if (how === "cut") return bytes.slice(0, at);
        const before = bytes.slice(0, at);
        const after = bytes.slice(how === "insert" ? at : at + 1);
        const middle = how === "delete" ? [] : [byte];
        return Uint8Array.from([...before, ...middle, ...after]);
      });
  });
}
