// One retraining of a model at a time: refused while a live process holds the lock, taken over from one killed with kill -9.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { access, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { createLogger } from "../../telemetry/logger.ts";
import { NAME, plantFrames, recordHistory, trainInto } from "./_test/plant_history.ts";
import { RetrainError, retrain } from "./retrain.ts";
import { LOCK_FILE, lockRetraining } from "./retrain_lock.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const log = createLogger({ service: "test", level: "silent" });
const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

const run = (registry: string, history: string) =>
  retrain({
    model: NAME,
    historyDir: history,
    registryDir: registry,
    promote: "auto",
    settings: { threshold: 0.9, confirmK: 2, confirmN: 3, quietWindows: 3 },
    device: "cpu",
    eventsPerKind: 16,
    log,
  });

/** A separate process that takes `NAME`'s lock in `registry` and holds it until killed. */
async function holder(registry: string) {
  const script = `
    const { lockRetraining } = await import(${JSON.stringify(join(ROOT, "models/retrain/retrain_lock.ts"))});
    await lockRetraining(${JSON.stringify(registry)}, ${JSON.stringify(NAME)});
    process.stdout.write("held\\n");
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (chunk) => String(chunk).includes("held") && resolve());
    child.on("exit", (code) => reject(new Error(`the holder exited ${code}`)));
  });
  return child;
}

test("a retraining is refused while another process retrains the model, and takes over the lock of one killed with kill -9", async (t) => {
  const root = await mkdtemp(join(tmpdir(), "retrain-lock-"));
  t.after(() => rm(root, { recursive: true, force: true }));
  const registry = join(root, "models");
  const history = join(root, "history", NAME);
  const { meta: active } = await trainInto(registry, plantFrames(1200, 1), true);
  await recordHistory(history, active.version, plantFrames(1500, 2));
  const lock = join(registry, NAME, LOCK_FILE);

  const child = await holder(registry);
  t.after(() => child.kill("SIGKILL"));
  await assert.rejects(run(registry, history), (error: Error) => {
    assert.ok(error instanceof RetrainError, String(error));
    assert.match(
      error.message,
      new RegExp(`a retraining of ${NAME} is running \\(pid ${child.pid},`),
    );
    return true;
  });
  const held = JSON.parse(await readFile(lock, "utf8"));
  assert.equal(held.pid, child.pid, "the refused run left the holder's lock alone");

  child.kill("SIGKILL");
  await new Promise((resolve) => child.once("exit", resolve));
  assert.ok(await exists(lock), "kill -9 leaves the lock behind");
  const report = await run(registry, history);
  assert.ok(["promoted", "held"].includes(report.decision));
  assert.equal(await exists(lock), false, "released at the end of the run");
});

test("lockRetraining refuses a lock held on another host, names the file, and takes one no process can be found for", async (t) => {
  const root = await mkdtemp(join(tmpdir(), "retrain-lock-"));
  t.after(() => rm(root, { recursive: true, force: true }));
  await mkdir(join(root, NAME));
  const lock = join(root, NAME, LOCK_FILE);
  const elsewhere = { pid: process.pid, host: `${hostname()}-other`, at: "2026-12-01T00:00:00Z" };
  await writeFile(lock, JSON.stringify(elsewhere));
  await assert.rejects(lockRetraining(root, NAME), (error: Error) => {
    assert.match(error.message, /is running on .*-other \(pid \d+, since 2026-12-01T00:00:00Z\)/);
    assert.ok(error.message.includes(lock), error.message);
    return true;
  });

  // A pid of this host that no process has now (a process that has exited).
  const gone = spawn(process.execPath, ["-e", ""]);
  const pid = gone.pid as number;
  await new Promise((resolve) => gone.once("exit", resolve));
  await writeFile(lock, JSON.stringify({ pid, host: hostname(), at: "2026-12-01T00:00:00Z" }));
  const release = await lockRetraining(root, NAME);
  assert.equal(JSON.parse(await readFile(lock, "utf8")).pid, process.pid);
  await release();
  assert.equal(await exists(lock), false);
});
