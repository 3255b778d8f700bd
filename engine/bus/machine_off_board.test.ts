// The machine-off board against a real nats-server: workers' posts gathered into one list of stopped machines and one of silent streams, a dead worker's post aged out, malformed posts skipped, an earlier release's post read, the last good lists kept while NATS does not answer.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { waitFor } from "../_test/wait_for.ts";
import { natsTrio, recordingLog } from "./_test/nats_trio.ts";
import {
  MAX_SILENT,
  type MachineOff,
  MachineOffBoard,
  mergeMachineOff,
  mergeSilent,
  type OwnedPartition,
} from "./machine_off_board.ts";

/** A short max age, so a dead worker's post ages out within the test (the deployment's is 30 s). */
const TTL_MS = 3000;
const T0 = Date.UTC(2026, 11, 3, 6);
const at = (s: number) => new Date(T0 + s * 1000).toISOString();

const nats = natsTrio();

function board(nc: NatsConnection, prefix: string, log = recordingLog().log) {
  return new MachineOffBoard({ nc, prefix, ttlMs: TTL_MS, log, freshMs: 0, readTimeoutMs: 500 });
}

/** A worker posting `list` and `partitions` (changed in place by the test) until stopped. */
function worker(
  b: MachineOffBoard,
  id: string,
  list: MachineOff[],
  partitions: OwnedPartition[] = [],
) {
  const stop = new AbortController();
  const posting = b.post(
    id,
    () => ({ machine_off: [...list], partitions: structuredClone(partitions) }),
    stop.signal,
  );
  return {
    list,
    partitions,
    /** Stops posting without leaving: the process died. */
    async die() {
      stop.abort();
      await posting;
    },
    async leave() {
      stop.abort();
      await posting;
      await b.leave(id);
    },
  };
}

const streams = (list: MachineOff[]) => list.map((m) => m.stream_id);

/** The stopped machines a replica's board gathers. */
const stopped = async (b: MachineOffBoard) => (await b.gather()).machine_off;

test("mergeMachineOff keeps one entry per stream, the earliest since, oldest stop first", () => {
  const merged = mergeMachineOff([
    [
      { stream_id: "b", since: at(5) },
      { stream_id: "a", since: at(9) },
    ],
    [
      { stream_id: "a", since: at(3) },
      { stream_id: "c", since: at(5) },
    ],
    [],
  ]);
  assert.deepEqual(merged, [
    { stream_id: "a", since: at(3) },
    { stream_id: "b", since: at(5) },
    { stream_id: "c", since: at(5) },
  ]);
  assert.deepEqual(mergeMachineOff([]), []);
});

const silent = (stream_id: string, s: number) => ({ stream_id, last_accepted_at: at(s) });

test("mergeSilent takes each partition from its latest owner, one entry per stream with its latest frame, longest silent first", () => {
  const merged = mergeSilent([
    // worker-a took partitions 1 and 3 at 0 s.
    [
      { partition: 1, since: at(0), silent: [silent("b", 20), silent("a", 30)] },
      { partition: 3, since: at(0), silent: [silent("moved", 10), silent("c", 5)] },
    ],
    // worker-b took partition 3 over at 50 s: it has read "moved" since; "c" is silent to it too,
    // and it re-read a later frame of it.
    [{ partition: 3, since: at(50), silent: [silent("c", 8)] }],
    // The stream in two of a partition's models (its route changed): its latest frame.
    [{ partition: 4, since: at(0), silent: [silent("d", 40), silent("d", 2)] }],
    [],
  ]);
  assert.deepEqual(merged, [silent("c", 8), silent("b", 20), silent("a", 30), silent("d", 40)]);
  assert.deepEqual(
    mergeSilent([[{ partition: 1, since: at(0), silent: [silent("b", 20), silent("a", 30)] }]], 1),
    [silent("a", 30)],
    "at most max, the most recently silent",
  );
  assert.deepEqual(mergeSilent([]), []);
});

test("mergeSilent keeps the most recently silent 256, longest silent first, however many old ones there are", () => {
  // 300 old dark lines in one worker's partition, and one that has just gone dark in another's.
  const old = Array.from({ length: 300 }, (_, i) => silent(`old-${i}`, i));
  const merged = mergeSilent([
    [{ partition: 0, since: at(0), silent: old }],
    [{ partition: 1, since: at(0), silent: [silent("just-dark", 1000)] }],
  ]);
  assert.equal(merged.length, MAX_SILENT);
  assert.deepEqual(merged.at(-1), silent("just-dark", 1000), "the line just gone dark is listed");
  assert.deepEqual(merged[0], silent("old-45", 45), "the oldest of those kept first");
  assert.deepEqual(
    merged.map((entry) => entry.last_accepted_at),
    [...old.slice(-(MAX_SILENT - 1)), silent("just-dark", 1000)].map((e) => e.last_accepted_at),
  );
});

test("machineOffBoard gathers the workers' silent streams, drops those a partition's new owner has seen again, and reads an earlier release's post", async () => {
  const replica = board(nats.r, "BOARD_SILENT");
  assert.deepEqual(await replica.gather(), { machine_off: [], silent: [] }, "nothing posted yet");
  const a = worker(
    board(nats.a, "BOARD_SILENT"),
    "worker-a",
    [],
    [
      { partition: 0, since: at(0), silent: [silent("press-1", 10)] },
      { partition: 1, since: at(0), silent: [silent("press-2", 12)] },
    ],
  );
  const b = worker(board(nats.b, "BOARD_SILENT"), "worker-b", [], []);
  try {
    await waitFor(
      async () => (await replica.gather()).silent?.length === 2,
      "worker-a's silent streams gathered",
    );
    assert.deepEqual((await replica.gather()).silent, [
      silent("press-1", 10),
      silent("press-2", 12),
    ]);
    // worker-b takes partition 1 over and reads press-2's frames since: worker-a's post, not
    // posted again yet (a worker frozen or killed), still names it.
    b.partitions.push({ partition: 1, since: at(60), silent: [] });
    await waitFor(
      async () => (await replica.gather()).silent?.length === 1,
      "press-2 off the list, the new owner having seen it",
    );
    assert.deepEqual((await replica.gather()).silent, [silent("press-1", 10)]);
    // press-2 goes quiet again at the new owner: its latest frame is listed.
    b.partitions[0].silent.push(silent("press-2", 70));
    await waitFor(
      async () => (await replica.gather()).silent?.length === 2,
      "press-2 silent at its new owner",
    );
    assert.deepEqual((await replica.gather()).silent, [
      silent("press-1", 10),
      silent("press-2", 70),
    ]);

    // A worker of an earlier release posts its stopped machines only: they are gathered, and no
    // silent list is served (it would say that worker's partitions have none).
    const kv = await new Kvm(nats.r).open("BOARD_SILENT_machine_off");
    await kv.put(
      "w.earlier",
      JSON.stringify({
        worker: "earlier",
        at: at(0),
        machine_off: [{ stream_id: "press-9", since: at(3) }],
      }),
    );
    await waitFor(
      async () => (await replica.gather()).machine_off.length === 1,
      "the earlier release's post gathered",
    );
    assert.deepEqual(await replica.gather(), {
      machine_off: [{ stream_id: "press-9", since: at(3) }],
    });
    await kv.delete("w.earlier");
    await waitFor(
      async () => (await replica.gather()).silent?.length === 2,
      "the silent list served again once every post has one",
    );
  } finally {
    await Promise.all([a.leave(), b.leave()]);
  }
});

test("a worker posts only its most recently silent streams, as many as a replica lists", async () => {
  const many = (partition: number, from: number): OwnedPartition => ({
    partition,
    since: at(0),
    silent: Array.from({ length: MAX_SILENT }, (_, i) =>
      silent(`s${partition}-${i}`, from + 2 * i),
    ),
  });
  // Partition 1's streams went quiet a second after partition 0's, turn about.
  const a = worker(board(nats.a, "BOARD_SILENT_MAX"), "worker-a", [], [many(1, 1), many(0, 0)]);
  const replica = board(nats.r, "BOARD_SILENT_MAX");
  try {
    const listed = await waitFor(async () => {
      const list = (await replica.gather()).silent ?? [];
      return list.length > 0 ? list : undefined;
    }, "the post gathered");
    assert.deepEqual(
      listed.map((entry) => entry.last_accepted_at),
      Array.from({ length: MAX_SILENT }, (_, i) => at(MAX_SILENT + i)),
      "the most recently silent across the partitions, longest silent first, as many as are listed",
    );
    const kv = await new Kvm(nats.r).open("BOARD_SILENT_MAX_machine_off");
    const entry = await kv.get("w.worker-a");
    assert.ok(entry, "the post is in the bucket");
    const { partitions } = entry.json() as { partitions: OwnedPartition[] };
    assert.deepEqual(
      partitions.map((p) => [p.partition, p.silent.length]),
      [
        [0, MAX_SILENT / 2],
        [1, MAX_SILENT / 2],
      ],
      "both partitions claimed, in order, with the most recently silent of either",
    );
    assert.deepEqual(
      partitions[1].silent.at(-1),
      silent(`s1-${MAX_SILENT - 1}`, 2 * MAX_SILENT - 1),
    );
    assert.deepEqual(partitions[0].silent[0], silent(`s0-${MAX_SILENT / 2}`, MAX_SILENT));
  } finally {
    await a.leave();
  }
});

test("machineOffBoard gathers every worker's list, follows a change and drops a worker that leaves", async () => {
  const replica = board(nats.r, "BOARD1");
  assert.deepEqual(await stopped(replica), [], "nothing posted yet");
  const a = worker(board(nats.a, "BOARD1"), "worker-a", [{ stream_id: "press-1", since: at(4) }]);
  const b = worker(board(nats.b, "BOARD1"), "worker-b", [
    { stream_id: "press-2", since: at(2) },
    // Around a takeover both owners list a stream: the earlier stop stands.
    { stream_id: "press-1", since: at(7) },
  ]);
  try {
    const both = [
      { stream_id: "press-2", since: at(2) },
      { stream_id: "press-1", since: at(4) },
    ];
    await waitFor(
      async () => JSON.stringify(await stopped(replica)) === JSON.stringify(both),
      "both workers' lists gathered",
    );
    // worker-a's machine runs again: its list empties, worker-b's entry for press-1 remains.
    a.list.length = 0;
    await waitFor(
      async () => (await stopped(replica)).find((m) => m.stream_id === "press-1")?.since === at(7),
      "worker-a's change gathered",
    );
    await b.leave();
    await waitFor(async () => (await stopped(replica)).length === 0, "worker-b's post removed");
  } finally {
    await Promise.all([a.leave(), b.leave()]);
  }
});

test("a stop in doubt (reads_running) travels from a worker's post to the replica's list, kept by the merge", async () => {
  const doubt = { since: at(40), sensor: "drive_speed", in_range: 0.981 };
  assert.deepEqual(
    mergeMachineOff([
      [{ stream_id: "a", since: at(3) }],
      [{ stream_id: "a", since: at(9), reads_running: doubt }],
    ]),
    [{ stream_id: "a", since: at(3), reads_running: doubt }],
    "the earliest since, and the doubt either owner saw",
  );
  const replica = board(nats.r, "BOARD_DOUBT");
  const a = worker(board(nats.a, "BOARD_DOUBT"), "worker-a", [
    { stream_id: "press-1", since: at(4), reads_running: doubt },
    { stream_id: "press-2", since: at(5) },
  ]);
  try {
    const gathered = await waitFor(async () => {
      const list = await stopped(replica);
      return list.length === 2 ? list : undefined;
    }, "the post gathered");
    assert.deepEqual(gathered, [
      { stream_id: "press-1", since: at(4), reads_running: doubt },
      { stream_id: "press-2", since: at(5) },
    ]);
  } finally {
    await a.leave();
  }
});

test("machineOffBoard keeps a live worker's post past its TTL and ages a dead worker's out", async () => {
  const replica = board(nats.r, "BOARD2");
  const a = worker(board(nats.a, "BOARD2"), "worker-a", [{ stream_id: "press-1", since: at(1) }]);
  const b = worker(board(nats.b, "BOARD2"), "worker-b", [{ stream_id: "press-2", since: at(2) }]);
  try {
    await waitFor(async () => (await stopped(replica)).length === 2, "both posts gathered");
    // worker-b dies (its process killed): it neither refreshes nor removes its post.
    await b.die();
    const deadline = performance.now() + 1.5 * TTL_MS;
    while (performance.now() < deadline) {
      const gathered = streams(await stopped(replica));
      assert.ok(gathered.includes("press-1"), "a refreshed post outlives the TTL");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await waitFor(
      async () => !streams(await stopped(replica)).includes("press-2"),
      "the dead worker's post aged out",
      10 * TTL_MS,
      50,
    );
    assert.deepEqual(streams(await stopped(replica)), ["press-1"]);
    const kv = await new Kvm(nats.r).open("BOARD2_machine_off");
    assert.equal(await kv.get("w.worker-b"), null, "its key is gone from the bucket");
  } finally {
    await Promise.all([a.leave(), b.leave()]);
  }
});

test("machineOffBoard skips a malformed post with one warning and serves the others", async () => {
  const { log, lines } = recordingLog();
  const replica = new MachineOffBoard({
    nc: nats.r,
    prefix: "BOARD3",
    ttlMs: TTL_MS,
    log,
    freshMs: 0,
    // Every read answered: a slow one's own warning (no key) is not what is counted here.
    readTimeoutMs: 30_000,
  });
  const a = worker(board(nats.a, "BOARD3"), "worker-a", [{ stream_id: "press-1", since: at(1) }]);
  try {
    await waitFor(async () => (await stopped(replica)).length === 1, "worker-a's post gathered");
    const kv = await new Kvm(nats.b).open("BOARD3_machine_off");
    await kv.put("w.not-json", "{");
    await kv.put(
      "w.bad-since",
      JSON.stringify({
        worker: "bad-since",
        at: at(0),
        machine_off: [{ stream_id: "press-9", since: "yesterday" }],
      }),
    );
    await kv.put("w.no-list", JSON.stringify({ worker: "no-list", at: at(0) }));
    await kv.put(
      "w.bad-partition",
      JSON.stringify({
        worker: "bad-partition",
        at: at(0),
        machine_off: [],
        partitions: [{ partition: -1, since: at(0), silent: [] }],
      }),
    );
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(await stopped(replica), [{ stream_id: "press-1", since: at(1) }]);
    }
    const warned = lines.filter((l) => l.level === "warn").map((l) => l.key);
    assert.deepEqual(
      warned.sort(),
      ["w.bad-partition", "w.bad-since", "w.no-list", "w.not-json"],
      "once each",
    );
  } finally {
    await a.leave();
  }
});

test("machineOffBoard serves the last good list while NATS does not answer, and follows again after", async () => {
  const { log, lines } = recordingLog();
  const replica = new MachineOffBoard({
    nc: nats.r,
    prefix: "BOARD4",
    ttlMs: 30_000,
    log,
    freshMs: 0,
    readTimeoutMs: 300,
  });
  const a = worker(board(nats.a, "BOARD4"), "worker-a", [{ stream_id: "press-1", since: at(1) }]);
  const good = [{ stream_id: "press-1", since: at(1) }];
  try {
    await waitFor(async () => (await stopped(replica)).length === 1, "worker-a's post gathered");
    const before = lines.length;
    await nats.server.signal("SIGSTOP");
    try {
      // Answered by the deadline, with the last good list: /stats never waits on NATS for long.
      assert.deepEqual(await stopped(replica), good);
      assert.deepEqual(await stopped(replica), good);
      const warns = lines.slice(before).filter((l) => l.level === "warn");
      assert.equal(warns.length, 1, "one warning for the spell");
    } finally {
      await nats.server.signal("SIGCONT");
    }
    a.list.push({ stream_id: "press-2", since: at(2) });
    await waitFor(
      async () => (await stopped(replica)).length === 2,
      "the board followed again once NATS answered",
      20_000,
      100,
    );
    assert.ok(lines.some((l) => l.level === "info" && /answers again/.test(l.msg)));
  } finally {
    await nats.server.signal("SIGCONT");
    await a.leave();
  }
});
