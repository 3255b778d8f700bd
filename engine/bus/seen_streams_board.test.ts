// The streams seen per partition against a real nats-server: handed from owner to owner, two owners' writes folded, the bound within NATS's message limit, an entry never overwritten unread while NATS does not answer.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Kvm } from "@nats-io/kv";
import { StreamWindows } from "../window/stream_windows.ts";
import { natsTrio, recordingLog } from "./_test/nats_trio.ts";
import { partitionOf } from "./partition_of.ts";
import { SEEN_PER_PARTITION, SeenStreamsBoard } from "./seen_streams_board.ts";

const nats = natsTrio();
const T0 = Date.UTC(2026, 2, 1);
const ids = (list: { stream_id: string }[]) => list.map((s) => s.stream_id);
const lane = () => new StreamWindows({ windowSize: 2, frameSize: 1, maxStreams: 10_000 });
const answered = () => AbortSignal.timeout(10_000);

/** The first stream ids `prefix-<n>` that fall in partition `p` of `partitions`. */
function idsIn(prefix: string, p: number, partitions: number, count: number): string[] {
  const out: string[] = [];
  for (let n = 0; out.length < count; n++) {
    if (partitionOf(`${prefix}-${n}`, partitions) === p) out.push(`${prefix}-${n}`);
  }
  return out;
}

test("seenStreamsBoard hands a partition's streams to its next owner, who lists those its windows do not hold as silent", async () => {
  const { log } = recordingLog();
  const [quiet, back] = idsIn("line", 1, 4, 2);
  const before = new SeenStreamsBoard({ nc: nats.a, prefix: "SEEN1", partitions: 4, log });
  const old = before.partition(1);
  assert.equal(await old.ready(answered()), true);
  const windows = lane();
  for (const t of [0, 1000, 2000]) windows.admit(quiet, t, T0 + t);
  windows.admit(back, 1, T0 + 2500);
  await old.save([windows]);
  // Partition 1 of 2 partitions would hold other streams: a count changed leaves those out.
  const kv = await new Kvm(nats.r).open("SEEN1_seen");
  const text = (await kv.get("p1"))?.string() ?? "";
  assert.match(text, /"format":1/, "the single process's format");

  const next = new SeenStreamsBoard({ nc: nats.b, prefix: "SEEN1", partitions: 4, log });
  const taken = next.partition(1);
  assert.equal(await taken.ready(answered()), true);
  assert.deepEqual(taken.silent(T0 + 60_000, 10_000, []), [
    { stream_id: quiet, last_accepted_at: new Date(T0 + 2000).toISOString() },
    { stream_id: back, last_accepted_at: new Date(T0 + 2500).toISOString() },
  ]);
  const again = lane();
  again.admit(back, 2, T0 + 59_000);
  assert.deepEqual(
    ids(taken.silent(T0 + 60_000, 10_000, [again])),
    [quiet],
    "a stream its windows hold is theirs to judge",
  );
  assert.deepEqual(next.partition(0).silent(T0 + 60_000, 10_000, []), [], "another partition's");
  const recounted = new SeenStreamsBoard({ nc: nats.b, prefix: "SEEN1", partitions: 2, log });
  const moved = recounted.partition(1);
  assert.equal(await moved.ready(answered()), true);
  assert.deepEqual(
    ids(moved.silent(T0 + 60_000, 10_000, [])),
    [quiet, back].filter((id) => partitionOf(id, 2) === 1),
    "streams of another partition once NATS_PARTITIONS changed are left out",
  );
});

test("seenStreamsBoard folds in what another owner wrote meanwhile instead of overwriting it", async () => {
  const { log } = recordingLog();
  const a = new SeenStreamsBoard({ nc: nats.a, prefix: "SEEN2", partitions: 1, log }).partition(0);
  const b = new SeenStreamsBoard({ nc: nats.b, prefix: "SEEN2", partitions: 1, log }).partition(0);
  // Both read the partition empty (two owners around a takeover), then each writes its own.
  assert.equal(await a.ready(answered()), true);
  assert.equal(await b.ready(answered()), true);
  const windowsA = lane();
  windowsA.admit("from-a", 1, T0);
  const windowsB = lane();
  windowsB.admit("from-b", 1, T0 + 10);
  windowsB.admit("from-a", 5, T0 + 20);
  await a.save([windowsA]);
  await b.save([windowsB]);
  const reader = new SeenStreamsBoard({ nc: nats.r, prefix: "SEEN2", partitions: 1, log });
  const both = reader.partition(0);
  assert.equal(await both.ready(answered()), true);
  assert.deepEqual(both.silent(T0 + 1e6, 1, []), [
    { stream_id: "from-b", last_accepted_at: new Date(T0 + 10).toISOString() },
    { stream_id: "from-a", last_accepted_at: new Date(T0 + 20).toISOString() },
  ]);
});

test("seenStreamsBoard keeps the most recently active streams of a partition, 128-character ids and all, in one entry", async () => {
  const { log, lines } = recordingLog();
  const board = new SeenStreamsBoard({ nc: nats.a, prefix: "SEEN3", partitions: 1, log });
  const seen = board.partition(0);
  assert.equal(await seen.ready(answered()), true);
  const windows = lane();
  const id = (i: number) => `${String(i).padStart(6, "0")}${"x".repeat(122)}`;
  const extra = 10;
  for (let i = 0; i < SEEN_PER_PARTITION + extra; i++) {
    // Uneven intervals: each stream's step a long fraction, as a real one's fades.
    windows.admit(id(i), 1, T0 + i * 1_000_003.7);
    windows.admit(id(i), 2, T0 + i * 1_000_003.7 + 123_456.789_012_3);
  }
  await seen.save([windows]);
  assert.deepEqual(
    lines.filter((l) => l.level === "warn"),
    [],
  );
  const entry = await (await new Kvm(nats.r).open("SEEN3_seen")).get("p0");
  assert.ok(entry && entry.length < 1024 * 1024, `${entry?.length} bytes, under 1 MB`);
  const read = new SeenStreamsBoard({ nc: nats.r, prefix: "SEEN3", partitions: 1, log });
  const listed = read.partition(0);
  assert.equal(await listed.ready(answered()), true);
  const silent = ids(listed.silent(Number.MAX_SAFE_INTEGER, 1, []));
  assert.equal(silent.length, SEEN_PER_PARTITION);
  assert.ok(!silent.includes(id(extra - 1)) && silent.includes(id(extra)), "the oldest left out");
});

test("seenStreamsBoard never throws while NATS does not answer, never overwrites an entry it has not read, and writes once NATS answers", async () => {
  const { log, lines } = recordingLog();
  const options = { prefix: "SEEN4", partitions: 1, log, timeoutMs: 300 };
  const first = new SeenStreamsBoard({ nc: nats.a, ...options }).partition(0);
  assert.equal(await first.ready(answered()), true);
  const old = lane();
  old.admit("dark-before", 1, T0);
  await first.save([old]);

  const board = new SeenStreamsBoard({ nc: nats.b, ...options });
  // The bucket opened before NATS stops answering.
  assert.equal(await board.partition(1).ready(answered()), true);
  const windows = lane();
  windows.admit("new-owner", 1, T0 + 1000);
  await nats.server.signal("SIGSTOP");
  let taken: ReturnType<SeenStreamsBoard["partition"]>;
  try {
    taken = board.partition(0);
    assert.equal(await taken.ready(AbortSignal.timeout(100)), false, "the takeover goes on");
    await taken.save([windows]);
    await taken.save([windows]);
    assert.equal(lines.filter((l) => l.level === "warn").length, 1, "one warning for the spell");
  } finally {
    await nats.server.signal("SIGCONT");
  }
  await taken.save([windows]);
  assert.ok(lines.some((l) => l.level === "info" && /answers again/.test(l.msg)));
  assert.deepEqual(ids(taken.silent(T0 + 1e6, 1, [])).sort(), ["dark-before", "new-owner"]);
  const reader = new SeenStreamsBoard({ nc: nats.r, ...options }).partition(0);
  assert.equal(await reader.ready(answered()), true);
  assert.deepEqual(
    ids(reader.silent(T0 + 1e6, 1, [])).sort(),
    ["dark-before", "new-owner"],
    "the earlier owner's stream is still there",
  );
});

test("seenStreamsBoard: two owners' full entries merged at a takeover are written trimmed to the most recently active, under 1 MB", async () => {
  const { log, lines } = recordingLog();
  const a = new SeenStreamsBoard({ nc: nats.a, prefix: "SEEN5", partitions: 1, log }).partition(0);
  const b = new SeenStreamsBoard({ nc: nats.b, prefix: "SEEN5", partitions: 1, log }).partition(0);
  assert.equal(await a.ready(answered()), true);
  assert.equal(await b.ready(answered()), true);
  const id = (owner: string, i: number) =>
    `${owner}${String(i).padStart(6, "0")}${"x".repeat(121)}`;
  const windowsA = lane();
  const windowsB = lane();
  for (let i = 0; i < SEEN_PER_PARTITION; i++) {
    windowsA.admit(id("a", i), 1, T0 + i);
    // B's streams are the more recently active.
    windowsB.admit(id("b", i), 1, T0 + 100_000 + i);
  }
  await a.save([windowsA]);
  // B read the entry before A wrote it: its write is refused, it reads A's and merges.
  await b.save([windowsB]);
  assert.deepEqual(
    lines.filter((l) => l.level === "warn"),
    [],
    "written: the merge kept within the bound",
  );
  const entry = await (await new Kvm(nats.r).open("SEEN5_seen")).get("p0");
  assert.ok(entry && entry.length < 1024 * 1024, `${entry?.length} bytes, under 1 MB`);
  const next = new SeenStreamsBoard({ nc: nats.r, prefix: "SEEN5", partitions: 1, log });
  const taken = next.partition(0);
  assert.equal(await taken.ready(answered()), true);
  const listed = ids(taken.silent(Number.MAX_SAFE_INTEGER, 1, []));
  assert.equal(listed.length, SEEN_PER_PARTITION);
  assert.ok(
    listed.every((s) => s.startsWith("b")),
    "the most recently active are B's",
  );
});
