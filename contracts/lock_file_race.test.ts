// Real processes racing to take over one lock file left by a process killed with kill -9.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { test } from "node:test";
import { takeoverMarker } from "./lock_file.ts";
import { processStartedAt } from "./process_running.ts";

const RACERS = 4;
const ROUNDS = 20;

/** A child process taking the lock at `path` on "take" and releasing it on "release", one answer line each. */
const TAKER = (lockModule: string) => `
import { createInterface } from "node:readline";
import { takeLockFile } from ${JSON.stringify(lockModule)};
const path = process.argv[2];
let release;
console.log("ready");
for await (const line of createInterface({ input: process.stdin })) {
  if (line === "take") {
    try {
      release = await takeLockFile(path, (pid) => new Error("held by " + pid));
      console.log("got");
    } catch (error) {
      console.log("refused " + error.message);
    }
  } else if (line === "release") {
    await release?.();
    release = undefined;
    console.log("released");
  }
}
`;

interface Taker {
  pid: number;
  /** Sends `command` and resolves with the answer line. */
  ask(command: string): Promise<string>;
  kill(): Promise<void>;
}

/** Starts a taker process under the runtime running this test (Node with tsx, or Deno). */
async function startTaker(script: string, path: string): Promise<Taker> {
  const runtime = "Deno" in globalThis ? ["run", "-A", script] : ["--import", "tsx", script];
  const child: ChildProcess = spawn(process.execPath, [...runtime, path], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const waiting: ((line: string) => void)[] = [];
  const queued: string[] = [];
  lines.on("line", (line) => {
    const next = waiting.shift();
    if (next) next(line);
    else queued.push(line);
  });
  const nextLine = (what: string) =>
    new Promise<string>((resolve, reject) => {
      const queuedLine = queued.shift();
      if (queuedLine !== undefined) return resolve(queuedLine);
      const signal = AbortSignal.timeout(20_000);
      const onAbort = () => reject(new Error(`taker ${child.pid} gave no answer to ${what}`));
      signal.addEventListener("abort", onAbort, { once: true });
      exited.then(() => reject(new Error(`taker ${child.pid} exited before answering ${what}`)));
      waiting.push((line) => {
        signal.removeEventListener("abort", onAbort);
        resolve(line);
      });
    });
  assert.equal(await nextLine("start"), "ready");
  return {
    pid: child.pid as number,
    ask(command) {
      const answer = nextLine(command);
      child.stdin?.write(`${command}\n`);
      return answer;
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    },
  };
}

/** The lock file a process killed with kill -9 leaves at `path`. */
async function staleLock(script: string, path: string): Promise<string> {
  const victim = await startTaker(script, path);
  assert.equal(await victim.ask("take"), "got");
  await victim.kill();
  return readFile(path, "utf8");
}

async function withTakers(
  body: (dir: string, script: string, takers: Taker[]) => Promise<void>,
): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "lock-race-"));
  const script = join(dir, "taker.mts");
  await writeFile(script, TAKER(new URL("./lock_file.ts", import.meta.url).href));
  const takers: Taker[] = [];
  try {
    const lockDir = join(dir, "locks");
    await mkdir(lockDir);
    const started = await Promise.all(
      Array.from({ length: RACERS }, () => startTaker(script, join(lockDir, "data.lock"))),
    );
    takers.push(...started);
    await body(lockDir, script, takers);
  } finally {
    await Promise.all(takers.map((taker) => taker.kill()));
    await rm(dir, { recursive: true, force: true });
  }
}

/** All takers ask at once; exactly one gets the lock and the others are refused naming it. */
async function raceOnce(takers: Taker[], round: string): Promise<Taker> {
  const answers = await Promise.all(takers.map((taker) => taker.ask("take")));
  const winners = takers.filter((_, i) => answers[i] === "got");
  assert.equal(winners.length, 1, `${round}: ${winners.length} takers got the lock: ${answers}`);
  const [winner] = winners;
  for (const answer of answers.filter((answer) => answer !== "got")) {
    assert.equal(answer, `refused held by ${winner.pid}`, round);
  }
  return winner;
}

test("takeLockFile gives a stale lock to exactly one of several processes taking it over at once", async () => {
  await withTakers(async (dir, script, takers) => {
    const path = join(dir, "data.lock");
    const stale = await staleLock(script, path);
    for (let round = 1; round <= ROUNDS; round++) {
      // Each round's lock as if left by another killed process: the victim's pid, a new token.
      await writeFile(path, `${stale.trim().split(" ").slice(0, 2).join(" ")} round-${round}\n`);
      const winner = await raceOnce(takers, `round ${round}`);
      assert.equal((await readFile(path, "utf8")).split(" ")[0], String(winner.pid));
      assert.equal(await winner.ask("release"), "released");
      assert.deepEqual(await readdir(dir), [], `round ${round} left files behind`);
    }
  });
});

test("takeLockFile passes the takeover marker of a taker killed mid-takeover, removing it once done", async () => {
  await withTakers(async (dir, script, takers) => {
    const path = join(dir, "data.lock");
    const deadTaker = await staleLock(script, join(dir, "other.lock"));
    await rm(join(dir, "other.lock"));
    const stale = await staleLock(script, path);
    // A taker of an earlier lock text killed, and one of this text killed after making its marker.
    await writeFile(await takeoverMarker(path, "earlier text\n", 1), deadTaker);
    await writeFile(await takeoverMarker(path, stale, 1), deadTaker);
    const winner = await raceOnce(takers, "stale marker");
    assert.equal((await readFile(path, "utf8")).split(" ")[0], String(winner.pid));
    assert.deepEqual(await readdir(dir), ["data.lock"], "markers left behind");
    assert.equal(await winner.ask("release"), "released");
  });
});

test("takeLockFile refuses a stale lock that a live process is taking over, naming it", async () => {
  await withTakers(async (dir, script, takers) => {
    const path = join(dir, "data.lock");
    const stale = await staleLock(script, path);
    const marker = await takeoverMarker(path, stale, 1);
    await writeFile(marker, `${process.pid} ${processStartedAt(process.pid) ?? ""} live\n`);
    const answers = await Promise.all(takers.map((taker) => taker.ask("take")));
    assert.deepEqual(answers, Array(RACERS).fill(`refused held by ${process.pid}`));
    assert.equal(await readFile(path, "utf8"), stale);
    // The live taker gives up: the lock is taken over again, by one.
    await rm(marker);
    const winner = await raceOnce(takers, "after the marker");
    assert.equal(await winner.ask("release"), "released");
    assert.deepEqual(await readdir(dir), []);
  });
});
