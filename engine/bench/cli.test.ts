import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";

const ROOT = new URL("../../", import.meta.url).pathname;

function bench(...args: string[]) {
  return spawnSync(process.execPath, ["--import", "tsx", "engine/bench/cli.ts", ...args], {
    cwd: ROOT,
    encoding: "utf8",
  });
}

test("bench cli prints its usage on --help", () => {
  const r = bench("--help");
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^usage: npm run bench --/);
});

test("bench cli refuses bad arguments with the usage before any work", () => {
  const cases: [string[], RegExp][] = [
    [["--frobnicate"], /bench: Unknown option '--frobnicate'/],
    [["--features", "lots"], /'--features' must be an integer 1\.\.1000000, got 'lots'/],
    [["--connections", "0"], /'--connections' must be an integer 1\.\.1024, got '0'/],
    [["--workers", "1.5"], /'--workers' must be an integer 0\.\.64, got '1\.5'/],
    [["--env", "BATCH_MAX_DELAY_MS"], /'--env' must be KEY=VALUE .*got 'BATCH_MAX_DELAY_MS'/],
    [["--models", "3"], /'--models' must be 1 or 2, got '3'/],
    [["--bus", "kafka"], /'--bus' must be memory or nats, got 'kafka'/],
    [["--flood"], /'--flood' needs '--models 2'/],
    // Checked before the modes that exit early, too.
    [["--context", "--env", "=1"], /'--env' must be KEY=VALUE .*got '=1'/],
    // Options that would be ignored: the modes are runs of their own.
    [["--context", "--models", "2"], /'--context', '--models 2' are separate runs: give one/],
    [
      ["--swap", "--context"],
      /'--swap' applies to the load run or '--models 2', not with '--context'/,
    ],
    [
      ["--context", "--features", "200", "--connections", "2"],
      /'--features', '--connections' apply only to the load run, not with '--context'/,
    ],
    [
      ["--retrain", "--workers", "1"],
      /'--workers' apply only to the load run, not with '--retrain'/,
    ],
    [
      ["--models", "2", "--bus", "nats", "--features", "200"],
      /'--features', '--bus' apply only to the load run, not with '--models 2'/,
    ],
    [
      ["--retrain", "--env", "A=1"],
      /'--env' applies to the load run or '--models 2', not with '--retrain'/,
    ],
    // --swap activates the committed model: frames of another width would all be refused.
    [
      ["--features", "200", "--swap"],
      /'--swap' activates versions of the committed 25000-feature model: not with '--features 200'/,
    ],
    // A --json file that could not be written is said before the run, in every mode.
    [
      ["--json", "/nonexistent-bench-dir/b.json"],
      /'--json \/nonexistent-bench-dir\/b\.json': folder \/nonexistent-bench-dir does not exist/,
    ],
    [["--models", "2", "--json", "/tmp"], /'--json \/tmp': it is a folder/],
    [
      ["--context", "--json", "/nonexistent-bench-dir/c.json"],
      /folder \/nonexistent-bench-dir does not exist/,
    ],
  ];
  for (const [args, message] of cases) {
    const r = bench(...args);
    assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(" "));
    assert.match(r.stderr, /usage: npm run bench --/, args.join(" "));
    assert.doesNotMatch(
      r.stderr,
      /^(training a |building |measuring |starting the engine)|\n\s+at /m,
      args.join(" "),
    );
  }
});
