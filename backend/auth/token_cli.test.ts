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
  const cases: [string[], RegExp][] = [
    [
      ["--name", "", "--role", "viewer", "--file", file],
      /^token: --name must be 1-100 of A-Z a-z 0-9 _ \. @ -, got ''$/m,
    ],
    [
      ["--name", "ci", "--role", "viewer", "--expires-days", "0", "--file", file],
      /--expires-days must be a number of days above 0 and at most 3650, got '0'/,
    ],
    [
      ["--name", "ci", "--role", "viewer", "--file", join(dir, "no", "tokens.json")],
      /^token: --file .*no\/tokens\.json: folder .*no does not exist$/m,
    ],
  ];
  for (const [args, message] of cases) {
    const r = token(...args);
    assert.equal(r.status, 1, args.join(" "));
    assert.match(r.stderr, message, args.join(" "));
    assert.doesNotMatch(r.stderr, /\.tmp|entry 0|\n\s+at /, args.join(" "));
  }
  assert.equal(existsSync(file), false, "nothing was written");
  const ok = token("--name", "ci", "--role", "viewer", "--expires-days", "0.5", "--file", file);
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(JSON.parse(readFileSync(file, "utf8"))[0].name, "ci");
});
