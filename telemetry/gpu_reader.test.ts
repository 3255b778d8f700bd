import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type TestContext, test } from "node:test";
import { _parseGpuQuery, GpuReader } from "./gpu_reader.ts";

const MIB = 1024 * 1024;

/** A folder holding a fake `nvidia-smi` running `script`, removed after the test. */
function fakeNvidiaSmi(t: TestContext, script: string): string {
  const dir = mkdtempSync(join(tmpdir(), "fake-nvidia-smi-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "nvidia-smi");
  writeFileSync(file, `#!/bin/sh\n${script}\n`);
  chmodSync(file, 0o755);
  return dir;
}

/** The longest gap between the ticks of a 5 ms timer while `work` runs. */
async function worstTimerGap<T>(work: () => Promise<T>): Promise<{ result: T; gapMs: number }> {
  let last = performance.now();
  let gapMs = 0;
  const probe = setInterval(() => {
    const now = performance.now();
    gapMs = Math.max(gapMs, now - last);
    last = now;
  }, 5);
  try {
    const result = await work();
    return { result, gapMs: Math.max(gapMs, performance.now() - last) };
  } finally {
    clearInterval(probe);
  }
}

test("_parseGpuQuery reads the first GPU of nvidia-smi's CSV, memory in MiB", () => {
  assert.deepEqual(_parseGpuQuery("37, 1234, 81559\n5, 10, 81559\n"), {
    utilisation_percent: 37,
    memory_used_bytes: 1234 * MIB,
    memory_total_bytes: 81559 * MIB,
  });
  assert.equal(_parseGpuQuery("[N/A], 100, 4096\r\n")?.utilisation_percent, 0);
  assert.equal(_parseGpuQuery(""), undefined);
  assert.equal(_parseGpuQuery("No devices were found\n"), undefined);
  assert.equal(_parseGpuQuery("3, 4, [N/A]\n"), undefined);
});

test("gpuReader reads a GPU with only nvidia-smi on the path, no lspci", async (t) => {
  const dir = fakeNvidiaSmi(
    t,
    `[ "$1 $2" = "--query-gpu=utilization.gpu,memory.used,memory.total --format=csv,noheader,nounits" ] || exit 9
echo "37, 1234, 81559"`,
  );
  const reader = new GpuReader({ pathEnv: dir });
  assert.equal(reader.present, true);
  assert.equal(reader.latest(), undefined, "the first reading is still being taken");
  assert.deepEqual(await reader.read(), {
    utilisation_percent: 37,
    memory_used_bytes: 1234 * MIB,
    memory_total_bytes: 81559 * MIB,
  });
  assert.equal(reader.latest()?.utilisation_percent, 37);
});

test("gpuReader keeps the event loop turning while nvidia-smi hangs, then drops the reading", async (t) => {
  // The hung run answers only after 30 s; the reader gives up after 300 ms.
  const dir = fakeNvidiaSmi(
    t,
    `[ -f "$(dirname "$0")/hang" ] && exec sleep 30
echo "37, 1234, 81559"`,
  );
  let clock = 0;
  const reader = new GpuReader({ pathEnv: dir, timeoutMs: 300, retryMs: 10_000, now: () => clock });
  assert.ok(await reader.read(), "a first good reading");
  writeFileSync(join(dir, "hang"), "");
  clock += 1000;
  const { result, gapMs } = await worstTimerGap(async () => {
    const sampled = reader.latest();
    // The hung nvidia-smi is running now; timers still fire while it does.
    await new Promise((resolve) => setTimeout(resolve, 20));
    return { sampled, read: await reader.read() };
  });
  assert.equal(
    result.sampled?.utilisation_percent,
    37,
    "latest() answers at once, with the last reading",
  );
  assert.equal(result.read, undefined, "a timed-out refresh leaves no stale reading");
  // A blocking read would stall the loop for the whole 300 ms timeout (or the 30 s hang).
  assert.ok(gapMs < 250, `the event loop stalled ${gapMs.toFixed(0)} ms`);
});

test("gpuReader retries a failed reading later, not on every call", async (t) => {
  const dir = fakeNvidiaSmi(
    t,
    `echo run >> "$(dirname "$0")/runs"
[ -f "$(dirname "$0")/broken" ] && exit 1
echo "50, 10, 100"`,
  );
  const runs = () => readFileSync(join(dir, "runs"), "utf8").split("\n").length - 1;
  writeFileSync(join(dir, "broken"), "");
  let clock = 0;
  const reader = new GpuReader({
    pathEnv: dir,
    refreshMs: 1000,
    retryMs: 5000,
    maxRetryMs: 8000,
    now: () => clock,
  });
  assert.equal(await reader.read(), undefined);
  assert.equal(runs(), 1);
  for (const at of [1000, 4999]) {
    clock = at;
    assert.equal(await reader.read(), undefined);
  }
  assert.equal(runs(), 1, "no new run before the retry is due");
  clock = 5000;
  await reader.read();
  assert.equal(runs(), 2);
  clock = 12_999;
  await reader.read();
  assert.equal(runs(), 2, "the second failure doubles the wait (to at most maxRetryMs)");
  rmSync(join(dir, "broken"));
  clock = 13_000;
  assert.equal((await reader.read())?.utilisation_percent, 50);
  assert.equal(runs(), 3);
  clock = 13_999;
  await reader.read();
  assert.equal(runs(), 3, "a good reading is refreshed after refreshMs");
  clock = 14_000;
  await reader.read();
  assert.equal(runs(), 4);
});

test("gpuReader without nvidia-smi on the path spawns nothing and reads nothing", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "no-nvidia-smi-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const reader = new GpuReader({ pathEnv: dir });
  assert.equal(reader.present, false);
  assert.equal(reader.latest(), undefined);
  assert.equal(await reader.read(), undefined);
});
