import assert from "node:assert/strict";
import { test } from "node:test";
import { parseModelRoutes, StreamRoutes } from "./model_routes.ts";

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
