// The real backend process and its sign-in settings: what stops start-up (naming the setting or entry), and token mode over a real port with the token CLI.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { tokenDigest } from "../../contracts/auth.ts";
import { freePort } from "../_test/free_port.ts";
import { runUntilExit } from "../_test/run_until_exit.ts";
import { NODE_TS, type ServiceProcess, spawnService, waitFor } from "../_test/spawn_service.ts";
import { addToken } from "./token_file.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const run = promisify(execFile);

let dir: string;
const running: ServiceProcess[] = [];
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "auth-start-"));
});
after(async () => {
  await Promise.all(running.map((s) => s.stop("SIGKILL")));
  await rm(dir, { recursive: true, force: true });
});

/** Starts backend/main.ts with only `env` (and PATH, HOME) set and waits for it to exit. */
const startExpectingExit = (env: Record<string, string>) =>
  runUntilExit("backend/main.ts", { NO_COLOR: "1", SIMULATOR_RATE_HZ: "0", ...env });

describe("backend start-up refuses sign-in settings that do not hang together", () => {
  test("backend without AUTH_MODE on 0.0.0.0 exits naming AUTH_MODE=token, API_TOKENS_FILE and HOST", async () => {
    const { code, stdout, stderr } = await startExpectingExit({
      HOST: "0.0.0.0",
      PORT: String(await freePort()),
    });
    assert.equal(code, 1, `${stdout}\n${stderr}`);
    assert.match(stderr, /AUTH_MODE=token/);
    assert.match(stderr, /API_TOKENS_FILE/);
    assert.match(stderr, /HOST/);
    assert.doesNotMatch(stdout, /backend listening|database ready/, "it stopped before starting");
  });

  test("backend with AUTH_MODE=token and no API_TOKENS_FILE exits naming it", async () => {
    const { code, stdout, stderr } = await startExpectingExit({
      AUTH_MODE: "token",
      HOST: "0.0.0.0",
      PORT: String(await freePort()),
    });
    assert.equal(code, 1, `${stdout}\n${stderr}`);
    assert.match(stderr, /AUTH_MODE=token needs API_TOKENS_FILE/);
    assert.doesNotMatch(stdout, /backend listening|database ready/);
  });

  test("backend with a bad entry in the tokens file exits naming the file and the entry", async () => {
    const file = join(dir, "bad-tokens.json");
    const sha256 = await tokenDigest("some-token-0123456789");
    await writeFile(
      file,
      JSON.stringify([
        { name: "ci", role: "viewer", sha256 },
        { name: "ana", role: "superuser", sha256: await tokenDigest("another-token-0123") },
      ]),
    );
    const { code, stdout, stderr } = await startExpectingExit({
      AUTH_MODE: "token",
      API_TOKENS_FILE: file,
      PORT: String(await freePort()),
    });
    assert.equal(code, 1, `${stdout}\n${stderr}`);
    assert.ok(stderr.includes(`API_TOKENS_FILE ${file}`), stderr);
    assert.match(stderr, /entry 1\.role: must be one of viewer\|operator\|admin/);
    assert.doesNotMatch(stdout, /backend listening|database ready/);
  });
});

test("backend in token mode on 0.0.0.0 says a CONSOLE_TOKEN is ignored, reads only with a token, and a token removed with npm run token is refused within seconds", async () => {
  const file = join(dir, "tokens.json");
  const viewer = await addToken(file, { name: "victor", role: "viewer" });
  const admin = await addToken(file, { name: "alice", role: "admin" });
  assert.ok(viewer && admin);
  const port = await freePort();
  const backend = spawnService([...NODE_TS, "backend/main.ts"], {
    AUTH_MODE: "token",
    HOST: "0.0.0.0",
    PORT: String(port),
    API_TOKENS_FILE: file,
    DATABASE_URL: "",
    SIMULATOR_RATE_HZ: "0",
    // Left over from AUTH_MODE=none: said to be ignored, not reported as in force.
    CONSOLE_TOKEN: "left-over-console-token-0123",
  });
  running.push(backend);
  const listening = await backend.waitForLog((l) => l.msg === "backend listening", 90_000);
  assert.equal(listening.auth_mode, "token");
  assert.equal(listening.console_token, false);
  const ignored = await backend.waitForLog(
    (l) => l.level === "warn" && String(l.msg).startsWith("CONSOLE_TOKEN is used only with"),
    1000,
  );
  assert.match(String(ignored.msg), /ignored under AUTH_MODE=token/);
  const base = `http://127.0.0.1:${port}`;
  const incidents = (token?: string) =>
    fetch(`${base}/api/v1/incidents`, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
      signal: AbortSignal.timeout(10_000),
    });

  const anonymous = await incidents();
  assert.equal(anonymous.status, 401);
  assert.equal((await anonymous.json()).error, "unauthenticated");
  const read = await incidents(viewer);
  assert.equal(read.status, 200);
  assert.ok(Array.isArray((await read.json()).incidents));
  assert.equal((await fetch(`${base}/health/ready`)).status, 200, "probes need no token");

  const cli = await run("npm", ["run", "token", "--", "--remove", "victor", "--file", file], {
    cwd: ROOT,
    timeout: 120_000,
  });
  assert.match(cli.stdout, /removed victor from/);
  await waitFor(
    async () => ((await incidents(viewer)).status === 401 ? true : undefined),
    "the removed token to be refused",
    3000,
    100,
  );
  const refused = await incidents(viewer);
  assert.equal(refused.status, 401);
  assert.equal((await refused.json()).error, "unauthenticated");
  assert.equal((await incidents(admin)).status, 200, "the token left in the file still reads");
  assert.equal(await backend.stop("SIGTERM"), 0);
  // A mistyped option is named, with the usage, not a stack trace.
  const typo = await run("npm", ["run", "--silent", "token", "--", "--expires-at", "2027"], {
    cwd: ROOT,
    timeout: 120_000,
  }).then(
    () => assert.fail("an unknown option must fail"),
    (error: { code: number; stderr: string }) => error,
  );
  assert.equal(typo.code, 2, "a usage error");
  assert.match(
    typo.stderr,
    /^token: Unknown option '--expires-at'\nusage: npm run token -- --name NAME/m,
  );
  assert.doesNotMatch(typo.stderr, /at .*token_cli\.ts/);
});
