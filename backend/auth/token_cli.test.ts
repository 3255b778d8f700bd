import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";

const ROOT = new URL("../../", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "token-cli-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function token(...args: string[]) {
  return spawnSync(process.execPath, ["--import", "tsx", "backend/auth/token_cli.ts", ...args], {
    cwd: ROOT,
    encoding: "utf8",
  });
}

test("token cli prints its usage on --help", () => {
  const r = token("--help");
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^usage: npm run token -- --name NAME/);
});

test("token cli names the user's mistake in the user's terms", () => {
  const file = join(dir, "tokens.json");
  // Mistakes in the arguments: exit 2 with the usage; a file that cannot be used: exit 1.
  const cases: [string[], number, RegExp][] = [
    [
      ["--name", "", "--role", "viewer", "--file", file],
      2,
      /^token: --name must be 1-100 of A-Z a-z 0-9 _ \. @ -, got ''$/m,
    ],
    [
      ["--name", "ci", "--role", "viewer", "--expires-days", "0", "--file", file],
      2,
      /--expires-days must be a number of days above 0 and at most 3650, got '0'/,
    ],
    [["--role", "viewer", "--file", file], 2, /^token: --name is required/m],
    [["--name", "ci", "--role", "root", "--file", file], 2, /--role must be one of viewer/],
    [["--name", "ci", "--frobnicate", "--file", file], 2, /^token: Unknown option '--frobnicate'/m],
    [
      ["--name", "ci", "--role", "viewer", "--file", join(dir, "no", "tokens.json")],
      1,
      /^token: --file .*no\/tokens\.json: folder .*no does not exist$/m,
    ],
  ];
  for (const [args, status, message] of cases) {
    const r = token(...args);
    assert.equal(r.status, status, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(" "));
    if (status === 2) assert.match(r.stderr, /usage: npm run token --/, args.join(" "));
    assert.doesNotMatch(r.stderr, /\.tmp|entry 0|\n\s+at /, args.join(" "));
  }
  assert.equal(existsSync(file), false, "nothing was written");
  const ok = token("--name", "ci", "--role", "viewer", "--expires-days", "0.5", "--file", file);
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(JSON.parse(readFileSync(file, "utf8"))[0].name, "ci");
});

test("token cli --remove refuses what would make a token instead of ignoring it", () => {
  const file = join(dir, "remove.json");
  const made = token("--name", "ana", "--role", "viewer", "--file", file);
  assert.equal(made.status, 0, made.stderr);
  const before = readFileSync(file, "utf8");
  const cases: [string[], RegExp][] = [
    [
      ["--remove", "ana", "--name", "carl", "--role", "admin"],
      /^token: '--name', '--role' make a token: not with '--remove'$/m,
    ],
    [
      ["--remove", "ana", "--expires-days", "3"],
      /'--expires-days' makes a token: not with '--remove'/,
    ],
    [["--remove", "ana", "--if-missing"], /'--if-missing' makes a token: not with '--remove'/],
  ];
  for (const [args, message] of cases) {
    const r = token(...args, "--file", file);
    assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(" "));
    assert.match(r.stderr, /usage: npm run token --/);
  }
  assert.equal(readFileSync(file, "utf8"), before, "ana was not removed, carl not made");
  const removed = token("--remove", "ana", "--file", file);
  assert.equal(removed.status, 0, removed.stderr);
  assert.deepEqual(JSON.parse(readFileSync(file, "utf8")), []);
});
