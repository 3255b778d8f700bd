import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { appendFile, mkdtemp, open, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Outbox } from "./outbox.ts";

const record = (n: number) => {
  const id = crypto.randomUUID();
  return {
    id,
    body: JSON.stringify({ alert_id: id, n, score: 0.95 }),
    traceparent: `00-${"a".repeat(32)}-${"b".repeat(16)}-01`,
  };
};

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await mkdtemp(join(tmpdir(), "outbox-"));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test("outbox keeps undelivered alerts across a reopen with their exact bodies", () =>
  withDir(async (dir) => {
    const outbox = await Outbox.open({ dir });
    const records = [record(1), record(2), record(3)];
    await outbox.append(records);
    await outbox.delivered(records[1].id);
    await outbox.close();
    const reopened = await Outbox.open({ dir });
    assert.deepEqual(reopened.pending(), [records[0], records[2]]);
    // What the log said was delivered is remembered, not held.
    assert.equal(reopened.wasDelivered(records[1].id), true);
    assert.equal(reopened.has(records[1].id), false);
    assert.equal(reopened.wasDelivered(records[0].id), false);
    assert.equal(reopened.has(records[0].id), true);
    await reopened.delivered(records[0].id);
    assert.equal(reopened.wasDelivered(records[0].id), true);
    await reopened.close();
    // Compaction at each open keeps the marks: a second restart still knows both.
    const third = await Outbox.open({ dir });
    await third.close();
    const fourth = await Outbox.open({ dir });
    assert.equal(fourth.wasDelivered(records[0].id), true);
    assert.equal(fourth.wasDelivered(records[1].id), true);
    assert.deepEqual(fourth.pending(), [records[2]]);
    await fourth.close();
  }));

test("outbox survives a torn last line from a crash", () =>
  withDir(async (dir) => {
    const outbox = await Outbox.open({ dir: join(dir, "nested") });
    const r = record(1);
    await outbox.append([r]);
    await outbox.close();
    await appendFile(outbox.path, '{"op":"add","id":"x","alert":{"trunc');
    const reopened = await Outbox.open({ dir: join(dir, "nested") });
    assert.deepEqual(reopened.pending(), [r]);
    assert.equal(reopened.skippedLines, 1);
    await reopened.close();
  }));

test("outbox compacts the log once enough alerts are delivered", () =>
  withDir(async (dir) => {
    const outbox = await Outbox.open({ dir, compactAfter: 4 });
    const records = Array.from({ length: 6 }, (_, i) => record(i));
    await outbox.append(records);
    for (const r of records.slice(0, 4)) await outbox.delivered(r.id);
    const text = await readFile(outbox.path, "utf8");
    const lines = text
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    // The undelivered alerts, and one mark per delivered id (no add line, no old mark twice).
    assert.deepEqual(
      lines.filter((l) => l.op === "add").map((l) => l.id),
      records.slice(4).map((r) => r.id),
    );
    assert.deepEqual(
      lines.filter((l) => l.op === "done").map((l) => l.id),
      records.slice(0, 4).map((r) => r.id),
    );
    assert.equal(lines.length, 6);
    assert.equal(outbox.size, 2);
    await outbox.close();
  }));

test("outbox compacts the log once delivered alerts take compactBytes of it, before compactAfter marks", () =>
  withDir(async (dir) => {
    const outbox = await Outbox.open({ dir, compactBytes: 64 * 1024 });
    // Alerts with evidence: 8 KiB each, 12 of them delivered, 2 kept.
    const big = (n: number) => {
      const r = record(n);
      return { ...r, body: JSON.stringify({ ...JSON.parse(r.body), evidence: "e".repeat(8192) }) };
    };
    const records = Array.from({ length: 14 }, (_, i) => big(i));
    await outbox.append(records);
    const before = (await stat(outbox.path)).size;
    const addIds = async () =>
      (await readFile(outbox.path, "utf8"))
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l))
        .filter((l) => l.op === "add")
        .map((l) => l.id);
    // 7 delivered (~58 KiB): under 64 KiB, nothing rewritten yet.
    for (const r of records.slice(0, 7)) await outbox.delivered(r.id);
    assert.equal((await addIds()).length, 14);
    // The 8th passes 64 KiB, and more than the 6 undelivered alerts' bytes: rewritten to them.
    await outbox.delivered(records[7].id);
    assert.deepEqual(
      await addIds(),
      records.slice(8).map((r) => r.id),
    );
    const after = (await stat(outbox.path)).size;
    assert.ok(after < before / 2, `log ${after} bytes after delivering 8 of 14, was ${before}`);
    for (const r of records.slice(8, 12)) await outbox.delivered(r.id);
    await outbox.close();
    const reopened = await Outbox.open({ dir });
    assert.deepEqual(
      reopened.pending().map((r) => r.id),
      records.slice(12).map((r) => r.id),
    );
    for (const r of records.slice(0, 12)) assert.ok(reopened.wasDelivered(r.id));
    await reopened.close();
  }));

test("outbox counts the bytes of its undelivered alerts, across a reopen", () =>
  withDir(async (dir) => {
    const outbox = await Outbox.open({ dir });
    const records = [record(1), record(2), record(3)];
    await outbox.append(records);
    const bytes = (rs: typeof records) => rs.reduce((n, r) => n + Buffer.byteLength(r.body), 0);
    assert.equal(outbox.bytes, bytes(records));
    await outbox.delivered(records[0].id);
    assert.equal(outbox.bytes, bytes(records.slice(1)));
    await outbox.close();
    const reopened = await Outbox.open({ dir });
    assert.equal(reopened.bytes, bytes(records.slice(1)));
    await reopened.close();
  }));

test("outbox opens a log larger than the longest string the runtime can hold", () =>
  withDir(async (dir) => {
    // 70 alerts of 8 MB, all but the last delivered: a 560 MB log, more than V8's ~512 MiB
    // string (reading the log as one string threw "Invalid string length": no start).
    const filler = "x".repeat(8 * 2 ** 20);
    const file = await open(join(dir, "alerts.log"), "w");
    for (let i = 0; i < 70; i++) {
      const alert = `{"alert_id":"a${i}","evidence":"${filler}"}`;
      await file.write(`{"op":"add","id":"a${i}","alert":${alert}}\n`);
      if (i < 69) await file.write(`{"op":"done","id":"a${i}"}\n`);
    }
    await file.close();
    const outbox = await Outbox.open({ dir });
    assert.deepEqual(
      outbox.pending().map((r) => r.id),
      ["a69"],
    );
    assert.equal(outbox.wasDelivered("a0"), true);
    assert.ok(outbox.bytes > 8 * 2 ** 20, `${outbox.bytes} bytes held`);
    await outbox.close();
  }));

test("outbox ignores a second delivered mark for the same alert", () =>
  withDir(async (dir) => {
    const outbox = await Outbox.open({ dir });
    const r = record(1);
    await outbox.append([r]);
    await outbox.delivered(r.id);
    await outbox.delivered(r.id);
    assert.equal(outbox.size, 0);
    await outbox.close();
  }));

test("outbox refuses a second running process on the same folder, and takes over a dead one's lock", () =>
  withDir(async (dir) => {
    // Another live process holds it (this test's parent stands in for a second engine).
    const stat = await readFile(`/proc/${process.ppid}/stat`, "utf8");
    const started = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
    await writeFile(join(dir, "alerts.lock"), `${process.ppid} ${started}\n`);
    await assert.rejects(Outbox.open({ dir }), (e: Error) => {
      assert.equal(e.name, "OutboxInUseError");
      assert.match(e.message, new RegExp(`in use by process ${process.ppid}`));
      return true;
    });
    // A process that is gone (killed) left it: taken over.
    const gone = spawnSync(process.execPath, ["-e", "process.exit(0)"]).pid as number;
    await writeFile(join(dir, "alerts.lock"), `${gone}\n`);
    let outbox = await Outbox.open({ dir });
    assert.equal(
      (await readFile(join(dir, "alerts.lock"), "utf8")).split(" ")[0],
      String(process.pid),
    );
    await outbox.close();
    // A running process with that pid that is not the one that wrote the lock (a restarted
    // container's pid 1 is another process): taken over too.
    await writeFile(join(dir, "alerts.lock"), `${process.ppid} 1\n`);
    outbox = await Outbox.open({ dir });
    await outbox.close();
    await assert.rejects(readFile(join(dir, "alerts.lock")), { code: "ENOENT" });
  }));

/**
 * Runs `steps` against the outbox in `dir` in a child process whose files may not grow past
 * `maxFileBytes` (RLIMIT_FSIZE, as a disk filling up: a write crossing it is cut short, the next
 * one fails); prints what each step came to.
 */
function limitedChild(dir: string, maxFileBytes: number, steps: unknown[]): unknown[] {
  const script = `
    const { Outbox } = await import(${JSON.stringify(new URL("./outbox.ts", import.meta.url).pathname)});
    const steps = ${JSON.stringify(steps)};
    const out = [];
    const outbox = await Outbox.open({ dir: ${JSON.stringify(dir)} });
    out.push({ opened: outbox.size });
    for (const records of steps) {
      out.push(await outbox.append(records).then(() => "durable", (e) => e.code));
    }
    out.push({ held: outbox.size });
    await outbox.close().catch(() => {});
    console.log(JSON.stringify(out));`;
  const child = spawnSync(
    "prlimit",
    [
      `--fsize=${maxFileBytes}`,
      process.execPath,
      "--import",
      "tsx",
      "--input-type=module",
      "-e",
      script,
    ],
    { encoding: "utf8" },
  );
  assert.equal(child.status, 0, child.stderr);
  return JSON.parse(child.stdout.trim().split("\n").pop() as string);
}

const sized = (n: number, bytes: number) => {
  const id = `a-${n}`;
  return { id, body: JSON.stringify({ alert_id: id, pad: "x".repeat(bytes) }) };
};

test("outbox on a disk that fills up: an append cut short fails whole, leaves no fragment, and later appends are kept", () =>
  withDir(async (dir) => {
    const a = [0, 1, 2].map((n) => sized(n, 3000));
    const b = [3, 4, 5, 6, 7].map((n) => sized(n, 3000));
    const c = [sized(8, 3000)];
    const said = limitedChild(dir, 20_000, [a, b, c]);
    assert.deepEqual(said, [{ opened: 0 }, "durable", "EFBIG", "durable", { held: 4 }]);
    const reopened = await Outbox.open({ dir });
    assert.equal(reopened.skippedLines, 0, "no torn line");
    assert.deepEqual(
      reopened.pending().map((r) => r.id),
      ["a-0", "a-1", "a-2", "a-8"],
    );
    await reopened.close();
  }));

test("outbox whose compaction at open cannot be written keeps its log whole", () =>
  withDir(async (dir) => {
    const outbox = await Outbox.open({ dir });
    const records = Array.from({ length: 10 }, (_, n) => sized(n, 4000));
    await outbox.append(records);
    await outbox.close();
    // The log is ~40 KB; its rewrite at open cannot be written past 20 KB.
    assert.deepEqual(limitedChild(dir, 20_000, []), [{ opened: 10 }, { held: 10 }]);
    const reopened = await Outbox.open({ dir });
    assert.deepEqual(
      reopened.pending().map((r) => r.id),
      records.map((r) => r.id),
    );
    await reopened.close();
  }));
