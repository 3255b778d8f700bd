// `npm start` killed with SIGKILL: its backend and engine stop too, freeing their ports and locks, so the next start works.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { freePort } from "./backend/_test/free_port.ts";
import {
  DENO_TS,
  NODE_TS,
  type ServiceProcess,
  spawnService,
  waitFor,
} from "./backend/_test/spawn_service.ts";

const launchers: ServiceProcess[] = [];
// The processes below each launcher are killed by each test itself (killLeft), before its folder
// is removed.
after(() => {
  for (const launcher of launchers) launcher.stop("SIGKILL");
});

/** Linux's view of process `pid`: its parent and state, or undefined once it is gone or a zombie. */
function procStat(pid: number): { ppid: number; state: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const [state, ppid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return state === "Z" ? undefined : { ppid: Number(ppid), state };
  } catch {
    return undefined;
  }
}

/** The processes whose parent is `parent`, with their command lines. */
function childrenOf(parent: number): { pid: number; args: string }[] {
  const children: { pid: number; args: string }[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name) || procStat(Number(name))?.ppid !== parent) continue;
    try {
      const args = readFileSync(`/proc/${name}/cmdline`, "utf8").replaceAll("\0", " ");
      children.push({ pid: Number(name), args });
    } catch {
      // Ended meanwhile.
    }
  }
  return children;
}

/**
 * Kills what is left of `pids` (a launcher that left them running: the defect) and waits until
 * they are gone, so their folder can be removed and the test fails with its own error.
 */
async function killLeft(pids: number[]) {
  for (const pid of pids) {
    if (procStat(pid) === undefined) continue;
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Gone meanwhile.
    }
  }
  await waitFor(
    async () => (pids.every((pid) => procStat(pid) === undefined) ? true : undefined),
    `${pids} killed`,
    10_000,
    100,
  );
}

const answers = (url: string) =>
  fetch(url, { signal: AbortSignal.timeout(2000) }).then(
    (res) => res.ok,
    () => false,
  );

/** Every process below `root`, children first. */
function descendantsOf(root: number): { pid: number; args: string }[] {
  const children = childrenOf(root);
  return [...children, ...children.flatMap((c) => descendantsOf(c.pid))];
}

/** Runs `command` (the launcher, or what runs it) and waits until both services are ready. */
async function startReady(command: string[], env: Record<string, string>) {
  const launcher = spawnService(command, env);
  launchers.push(launcher);
  for (const url of [
    `http://127.0.0.1:${env.PORT}/health/ready`,
    `http://127.0.0.1:${env.APP_PORT}/health/ready`,
  ]) {
    await waitFor(
      async () => ((await answers(url)) ? true : undefined),
      `${url} ready:\n${launcher.lines.slice(-20).join("\n")}`,
      120_000,
      250,
    );
  }
  return launcher;
}

/** `npm start`'s settings on free ports, its data under `dir`. */
async function launchEnv(dir: string) {
  return {
    PORT: String(await freePort()),
    APP_PORT: String(await freePort()),
    DATA_DIR: join(dir, "engine"),
    PGLITE_DATA_DIR: join(dir, "backend"),
    DATABASE_URL: "",
    // The simulator keeps sending frames: the backend is busy, as in the demo.
    SIMULATOR_RATE_HZ: "2",
  };
}

async function launcherKilledThenStartedAgain(runtime: string[]) {
  const dir = await mkdtemp(join(tmpdir(), "launcher-kill-"));
  const started: number[] = [];
  try {
    const env = await launchEnv(dir);
    const first = await startReady([...runtime, "start.ts"], env);
    const services = childrenOf(first.child.pid!);
    started.push(...services.map((s) => s.pid));
    assert.deepEqual(
      services.map((s) => s.args.match(/(backend|engine)\/main\.ts/)?.[0]).sort(),
      ["backend/main.ts", "engine/main.ts"],
      JSON.stringify(services),
    );

    first.child.kill("SIGKILL");
    await waitFor(
      async () => (services.every((s) => procStat(s.pid) === undefined) ? true : undefined),
      `the services (${services.map((s) => s.pid)}) to stop after their launcher's SIGKILL`,
      60_000,
      250,
    );
    for (const port of [env.PORT, env.APP_PORT]) {
      assert.equal(await answers(`http://127.0.0.1:${port}/health/live`), false, `port ${port}`);
    }

    // Same ports, same data: the locks and the database were let go.
    const second = await startReady([...runtime, "start.ts"], env);
    second.child.kill("SIGINT");
    const code = await new Promise((resolve) => second.child.once("exit", resolve));
    assert.equal(code, 0, second.lines.slice(-20).join("\n"));
  } finally {
    await killLeft(started);
    await rm(dir, { recursive: true, force: true });
  }
}

/** Kills what runs the launcher (npm, `deno task`) with SIGKILL: everything below it stops. */
async function runnerKilled(command: string[]) {
  const dir = await mkdtemp(join(tmpdir(), "launcher-kill-"));
  const started: number[] = [];
  try {
    const env = await launchEnv(dir);
    const runner = await startReady(command, env);
    // With OTEL_DENO unset, as here, no runtime warns about its value (Deno did for an empty one).
    assert.deepEqual(
      runner.lines.filter((l) => l.includes("not recognized")),
      [],
    );
    const below = descendantsOf(runner.child.pid!);
    started.push(...below.map((p) => p.pid));
    assert.ok(
      below.some((p) => p.args.includes("start.ts")),
      `the launcher below ${command.join(" ")}: ${JSON.stringify(below)}`,
    );

    runner.child.kill("SIGKILL");
    await waitFor(
      async () => (below.every((p) => procStat(p.pid) === undefined) ? true : undefined),
      `${below.map((p) => `${p.pid} ${p.args}`).join(", ")} to stop after SIGKILL to ${command.join(" ")}`,
      60_000,
      250,
    );
    for (const port of [env.PORT, env.APP_PORT]) {
      assert.equal(await answers(`http://127.0.0.1:${port}/health/live`), false, `port ${port}`);
    }
  } finally {
    await killLeft(started);
    await rm(dir, { recursive: true, force: true });
  }
}

test("npm start's launcher (start.ts under Node) killed with SIGKILL stops its backend and engine, and starts again on the same ports and data", async () => {
  await launcherKilledThenStartedAgain(NODE_TS);
});

test("deno task start's launcher (start.ts under Deno) killed with SIGKILL stops its backend and engine, and starts again on the same ports and data", async () => {
  await launcherKilledThenStartedAgain(DENO_TS);
});

test("npm itself killed with SIGKILL under npm start: the launcher and both services stop", async () => {
  await runnerKilled(["npm", "start", "--silent"]);
});

test("deno task itself killed with SIGKILL under deno task start: the launcher and both services stop", async () => {
  await runnerKilled([DENO_TS[0], "task", "start"]);
});
