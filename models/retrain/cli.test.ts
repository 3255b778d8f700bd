import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";

const ROOT = new URL("../../", import.meta.url).pathname;

test("retrain cli on a committed flat model names the registry npm start keeps", () => {
  // As after `npm start` with no MODEL_DIR set: the default MODEL_DIR is the committed models/.
  const env = { ...process.env };
  delete env.MODEL_DIR;
  delete env.DATA_DIR;
  const r = spawnSync(
    process.execPath,
    ["--import", "tsx", "models/retrain/cli.ts", "--model", "featurewise_ocsvm"],
    { cwd: ROOT, env, encoding: "utf8" },
  );
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /featurewise_ocsvm is in the flat layout in models/);
  assert.match(r.stderr, /MODEL_DIR=\.data\/engine\/models/);
  assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
});

test("retrain cli refuses --events 0: the gate would pass detection unmeasured", () => {
  const r = spawnSync(
    process.execPath,
    ["--import", "tsx", "models/retrain/cli.ts", "--model", "featurewise_ocsvm", "--events", "0"],
    { cwd: ROOT, env: process.env, encoding: "utf8" },
  );
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /'--events' must be an integer 1\.\.1000, got '0'/);
  assert.match(r.stderr, /usage: npm run retrain/);
});

test("retrain cli takes a model name that no registry could hold as a usage mistake", () => {
  const r = spawnSync(
    process.execPath,
    ["--import", "tsx", "models/retrain/cli.ts", "--model", "../etc"],
    { cwd: ROOT, env: process.env, encoding: "utf8" },
  );
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /'--model' must be a model name .*got '\.\.\/etc'/);
  assert.match(r.stderr, /usage: npm run retrain/);
});
