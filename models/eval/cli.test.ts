import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
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

/** The user's mistake, said in one line before any suite ran: exit 1, no stack trace. */
function assertRefused(r: ReturnType<typeof evalCli>, message: RegExp): void {
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, message);
  assert.doesNotMatch(r.stderr, /\n\s+at |\[eval\]/, "no stack trace, no suite started");
}

test("eval cli refuses a --json file it could not write before running anything", () => {
  assertRefused(
    evalCli("--suite", "drift", "--json", join(dir, "no", "such", "x.json")),
    /eval: '--json .*x\.json': folder .*such does not exist/,
  );
  assertRefused(evalCli("--suite", "drift", "--json", dir), /'--json .*': it is a folder/);
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
