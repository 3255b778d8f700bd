import assert from "node:assert/strict";
import { test } from "node:test";
import { globMatcher, parseModelRoutes, StreamRoutes } from "./model_routes.ts";

test("parseModelRoutes reads glob=model entries in order", () => {
  assert.deepEqual(parseModelRoutes(" boiler-*=boiler, line-b-?=packaging ,"), [
    { glob: "boiler-*", model: "boiler" },
    { glob: "line-b-?", model: "packaging" },
  ]);
  assert.deepEqual(parseModelRoutes(""), []);
});

test("parseModelRoutes refuses malformed entries, naming them", () => {
  assert.throws(
    () => parseModelRoutes("boiler-*"),
    /'MODEL_ROUTES' entry "boiler-\*" must be GLOB=MODEL/,
  );
  assert.throws(() => parseModelRoutes("a=../x"), /is not a model name/);
  assert.throws(() => parseModelRoutes("boiler/*=boiler"), /matches no stream id/);
  assert.throws(() => parseModelRoutes("=boiler"), /must be GLOB=MODEL/);
});

test("parseModelRoutes refuses a glob an earlier one shadows", () => {
  assert.throws(() => parseModelRoutes("*=a,boiler-*=b"), /never reached: the earlier glob "\*"/);
  assert.throws(() => parseModelRoutes("line-*=a,line-b-*=b"), /never reached/);
  assert.throws(() => parseModelRoutes("x=a,x=b"), /never reached/);
  // The narrower glob first is fine: it takes its streams, the wider one the rest.
  assert.equal(parseModelRoutes("line-b-*=b,line-*=a").length, 2);
});

test("StreamRoutes picks the first matching glob, else the default model", () => {
  const routes = new StreamRoutes(parseModelRoutes("line-b-*=packaging,line-*=boiler"), "plant");
  assert.equal(routes.route("line-b-7"), "packaging");
  assert.equal(routes.route("line-a-1"), "boiler");
  assert.equal(routes.route("compressor"), "plant");
  // Glob characters are literal elsewhere: `.` is not "any character".
  assert.equal(new StreamRoutes(parseModelRoutes("a.b=x"), "d").route("aXb"), "d");
  assert.deepEqual(routes.models, ["plant", "packaging", "boiler"]);
  assert.deepEqual(routes.globsOf("plant"), ["*"]);
  assert.deepEqual(routes.globsOf("boiler"), ["line-*"]);
});

/** The regular expression routes were matched with before `globMatcher`: the reference. */
function globRegExp(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${body}$`);
}

test("globMatcher matches whole texts, * any run, ? one character, the rest literal", () => {
  const cases: [string, string, boolean][] = [
    ["a*b*c", "abc", true],
    ["a*b*c", "a-b-c", true],
    ["a*b*c", "axxbyybzzc", true],
    ["a*b*c", "acb", false],
    ["a*b*c", "abcx", false],
    ["a*b*c", "xabc", false],
    ["*-x", "line-1-x", true],
    ["*-x", "-x", true],
    ["*-x", "line-1-y", false],
    ["line-*", "line-", true],
    ["line-*", "lin", false],
    ["*", "", true],
    ["*", "anything", true],
    ["**", "", true],
    ["a**b", "ab", true],
    ["a**b", "a-b", true],
    ["a**b", "a-c", false],
    ["*a*", "a", true],
    ["*a*", "bbb", false],
    // The tail is anchored at the end: it may not overlap the head.
    ["ab*ba", "aba", false],
    ["ab*ba", "abba", true],
    ["a?c", "abc", true],
    ["a?c", "ac", false],
    ["?*?", "x", false],
    ["?*?", "xy", true],
    ["l*-t?mp-*-x", "line-1-temp-2-x", true],
    ["l*-t?mp-*-x", "line-1-tmp-2-x", false],
    ["x", "x", true],
    ["x", "xx", false],
    ["", "", true],
    ["", "x", false],
    // Characters regular expressions give a meaning to are literal.
    ["a.b", "a.b", true],
    ["a.b", "aXb", false],
    ["a+", "a+", true],
    ["a+", "aa", false],
    ["(a)*", "(a)-1", true],
    ["(a)*", "a-1", false],
    ["[ab]", "a", false],
    ["a|b", "a", false],
    ["^a$", "^a$", true],
    ["a\\*", "a\\-1", true],
  ];
  for (const [glob, text, expected] of cases) {
    assert.equal(globMatcher(glob)(text), expected, `${glob} on ${JSON.stringify(text)}`);
  }
});

test("globMatcher agrees with the glob's regular expression on every short glob and text", () => {
  const words = (alphabet: string[], max: number) => {
    const out = [""];
    for (let start = 0, length = 1; length <= max; length++) {
      const end = out.length;
      for (let i = start; i < end; i++) for (const c of alphabet) out.push(out[i] + c);
      start = end;
    }
    return out;
  };
  const texts = words(["a", "b", "."], 5);
  for (const glob of words(["a", "b", ".", "*", "?"], 4)) {
    const matches = globMatcher(glob);
    const reference = globRegExp(glob);
    for (const text of texts) {
      assert.equal(matches(text), reference.test(text), `${glob} on ${JSON.stringify(text)}`);
    }
  }
});

test("globMatcher answers long texts and many-star globs", () => {
  // Sized so a backtracking matcher is slow here, not stuck: linear time is for the bench to
  // show; what a test can hold is the answers.
  const long = `line-${"-temp-".repeat(10_000)}`;
  assert.equal(globMatcher("line-*-temp-*-x")(long), false);
  assert.equal(globMatcher("line-*-temp-*-x")(`${long}-x`), true);
  assert.equal(globMatcher("*a*b*c*d")("abc".repeat(100)), false);
  assert.equal(globMatcher("*a*b*c*d")(`${"abc".repeat(100)}d`), true);
  assert.equal(globMatcher("*?a*?b*?c")("ab".repeat(100)), false);
  assert.equal(globMatcher("*?a*?b*?c")(`${"ab".repeat(100)}c`), true);
});

test("StreamRoutes routes a text that is no stream id to the default model", () => {
  const routes = new StreamRoutes(parseModelRoutes("line-*-temp-*-x=packaging,b*=boiler"), "plant");
  assert.equal(routes.route("line-1-temp-2-x"), "packaging");
  // Over 128 characters or a character a stream id cannot hold: no glob matches it.
  assert.equal(routes.route(`line-${"a".repeat(120)}-temp-2-x`), "plant");
  assert.equal(routes.route(`line-${"-temp-".repeat(10_000)}`), "plant");
  assert.equal(routes.route("b c"), "plant");
  assert.equal(routes.route("b\n"), "plant");
  assert.equal(routes.route(""), "plant");
});
