import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";

const ROOT = new URL("../../", import.meta.url).pathname;

function soak(...args: string[]) {
  return spawnSync(process.execPath, ["--import", "tsx", "backend/soak/cli.ts", ...args], {
    cwd: ROOT,
    encoding: "utf8",
  });
}

test("soak cli prints its usage on --help", () => {
  const r = soak("--help");
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^usage: npm run soak --/);
});

test("soak cli refuses bad arguments with the usage before any work", () => {
  const cases: [string[], RegExp][] = [
    [["--frobnicate"], /soak: Unknown option '--frobnicate'/],
    [["--rate-hz", "fast"], /'--rate-hz' must be a positive number, got 'fast'/],
    [["--duration-s", "0"], /'--duration-s' must be a positive number, got '0'/],
    [["--sample-every-s", ""], /'--sample-every-s' must be a positive number, got ''/],
    [["--alert-mode", "foo"], /'--alert-mode' must be incident or frame, got 'foo'/],
    [
      ["--retention-alerts-days", "0.001", "--retention-batch", "1.5"],
      /'--retention-batch' must be a positive integer, got '1\.5'/,
    ],
    [
      ["--retention-alerts-days", "0.001", "--retention-backlog=-1"],
      /'--retention-backlog' must be a non-negative integer, got '-1'/,
    ],
    [
      ["--retention-alerts-days", "0.001", "--retention-batch", "0"],
      /'--retention-batch' must be a positive integer, got '0'/,
    ],
    // Retention is off without --retention-alerts-days: its other options would be ignored.
    [["--retention-batch", "0"], /'--retention-batch' apply only with '--retention-alerts-days'/],
    [
      ["--retention-incidents-days", "1", "--retention-every-s", "5", "--retention-backlog", "9"],
      /'--retention-incidents-days', '--retention-every-s', '--retention-backlog' apply only with '--retention-alerts-days'/,
    ],
    // Checked before the run, not after minutes of it.
    [
      ["--json", "/nonexistent-soak-dir/soak.json"],
      /'--json \/nonexistent-soak-dir\/soak\.json': folder \/nonexistent-soak-dir does not exist/,
    ],
    [["--json", "/tmp"], /'--json \/tmp': it is a folder/],
  ];
  for (const [args, message] of cases) {
    const r = soak(...args);
    assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(" "));
    assert.match(r.stderr, /usage: npm run soak --/, args.join(" "));
    assert.equal(r.stdout, "", "nothing started");
  }
});
