import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";

const ROOT = new URL("../../", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "eval-cli-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function run(cli: string, ...args: string[]) {
  return spawnSync(process.execPath, ["--import", "tsx", cli, ...args], {
    cwd: ROOT,
    encoding: "utf8",
  });
}
const evalCli = (...args: string[]) => run("models/eval/cli.ts", ...args);

/** Data the user pointed at that cannot be used, said in one line before any suite ran: exit 1, no stack trace. */
function assertRefused(r: ReturnType<typeof evalCli>, message: RegExp): void {
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, message);
  assert.doesNotMatch(r.stderr, /\n\s+at |\[eval\]/, "no stack trace, no suite started");
}

/** A mistake in the arguments: exit 2 with the usage, before any suite ran. */
function assertUsageError(r: ReturnType<typeof evalCli>, message: RegExp): void {
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, message);
  assert.match(r.stderr, /usage: npm run eval --/);
  assert.doesNotMatch(r.stderr, /\n\s+at |\[eval\]/, "no stack trace, no suite started");
}

test("eval cli refuses a --json file it could not write before running anything", () => {
  assertUsageError(
    evalCli("--suite", "drift", "--json", join(dir, "no", "such", "x.json")),
    /eval: '--json .*x\.json': folder .*such does not exist/,
  );
  assertUsageError(evalCli("--suite", "drift", "--json", dir), /'--json .*': it is a folder/);
});

test("eval cli reads every suite's options before it runs the first suite", () => {
  const datasets = join(dir, "datasets");
  mkdirSync(join(datasets, "skab"), { recursive: true });
  mkdirSync(join(datasets, "tep"), { recursive: true });
  // skab/ holds no file: the skab suite, which runs first, would stop before tep's options were read.
  assertUsageError(
    evalCli("--suite", "skab,tep", "--datasets", datasets, "--tep-train", '{"window":20}'),
    /'--tep-train': unknown option 'window' \(known: windowSize, /,
  );
  // The drift suite would run for a minute before skab's options were read.
  assertUsageError(
    evalCli("--suite", "drift,skab", "--datasets", datasets, "--skab-train", "{bad"),
    /eval: '--skab-train' must be a JSON object: /,
  );
  assertUsageError(
    evalCli("--suite", "drift,plant", "--events", "abc"),
    /'--events' must be an integer >= 1, got 'abc'/,
  );
});

test("eval cli refuses options of suites that do not run, and unknown ones, with exit 2", () => {
  assertUsageError(evalCli("--frobnicate"), /eval: Unknown option '--frobnicate'/);
  assertUsageError(
    evalCli("--suite", "drift", "--events", "abc", "--models", "/nonexist", "--skab-train", "{bad"),
    /eval: '--models', '--events' \(plant\); '--skab-train' \(skab\): for suites that do not run here \(running: drift\)/,
  );
  assertUsageError(
    evalCli("--suite", "plant", "--datasets", dir),
    /'--datasets' applies only to the skab and tep suites \(the suites that run: plant\)/,
  );
  assertUsageError(
    evalCli("--suite", "plant,wind"),
    /'--suite' takes plant, drift, skab, tep; got 'wind'/,
  );
});

test("eval cli names the missing plant models of --models", () => {
  assertRefused(
    evalCli("--suite", "plant", "--models", join(dir, "missing")),
    /missing\/featurewise_ocsvm\.json: no such file \(the plant suite reads/,
  );
});

test("eval cli refuses plant models trained on a file instead of the simulated plant", () => {
  const lines = [
    "a,b,c",
    ...Array.from({ length: 150 }, (_, t) => `${t % 11},${t % 7},${Math.sin(t)}`),
  ];
  const input = join(dir, "history.csv");
  writeFileSync(input, `${lines.join("\n")}\n`);
  const models = join(dir, "from_file");
  for (const name of ["featurewise_ocsvm", "featurewise_ocsvm_linear"]) {
    const r = run(
      "models/train/cli.ts",
      "--input",
      input,
      "--out",
      models,
      "--model",
      name,
      "--flat",
    );
    assert.equal(r.status, 0, r.stderr);
  }
  assertRefused(
    evalCli("--suite", "plant", "--models", models),
    /featurewise_ocsvm was trained on the file history\.csv, not on the simulated plant/,
  );
});
