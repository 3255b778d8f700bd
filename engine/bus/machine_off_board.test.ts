// The machine-off board against a real nats-server: workers' posts gathered into one list, a dead worker's post aged out, malformed posts skipped, the last good list kept while NATS does not answer.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { waitFor } from "../_test/wait_for.ts";
import { natsTrio, recordingLog } from "./_test/nats_trio.ts";
import { type MachineOff, MachineOffBoard, mergeMachineOff } from "./machine_off_board.ts";

/** A short max age, so a dead worker's post ages out within the test (the deployment's is 30 s). */
const TTL_MS = 3000;
const T0 = Date.UTC(2026, 11, 3, 6);
const at = (s: number) => new Date(T0 + s * 1000).toISOString();

const nats = natsTrio();

function board(nc: NatsConnection, prefix: string, log = recordingLog().log) {
  return new MachineOffBoard({ nc, prefix, ttlMs: TTL_MS, log, freshMs: 0, readTimeoutMs: 500 });
}

/** A worker posting `list` (changed in place by the test) until stopped. */
function worker(b: MachineOffBoard, id: string, list: MachineOff[]) {
  const stop = new AbortController();
  const posting = b.post(id, () => [...list], stop.signal);
  return {
    list,
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

test("machineOffBoard gathers every worker's list, follows a change and drops a worker that leaves", async () => {
  const replica = board(nats.r, "BOARD1");
  assert.deepEqual(await replica.gather(), [], "nothing posted yet");
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
      async () => JSON.stringify(await replica.gather()) === JSON.stringify(both),
      "both workers' lists gathered",
    );
    // worker-a's machine runs again: its list empties, worker-b's entry for press-1 remains.
    a.list.length = 0;
    await waitFor(
      async () => (await replica.gather()).find((m) => m.stream_id === "press-1")?.since === at(7),
      "worker-a's change gathered",
    );
    await b.leave();
    await waitFor(async () => (await replica.gather()).length === 0, "worker-b's post removed");
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
      const list = await replica.gather();
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
    await waitFor(async () => (await replica.gather()).length === 2, "both posts gathered");
    // worker-b dies (its process killed): it neither refreshes nor removes its post.
    await b.die();
    const deadline = performance.now() + 1.5 * TTL_MS;
    while (performance.now() < deadline) {
      const gathered = streams(await replica.gather());
      assert.ok(gathered.includes("press-1"), "a refreshed post outlives the TTL");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await waitFor(
      async () => !streams(await replica.gather()).includes("press-2"),
      "the dead worker's post aged out",
      10 * TTL_MS,
      50,
    );
    assert.deepEqual(streams(await replica.gather()), ["press-1"]);
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
    await waitFor(async () => (await replica.gather()).length === 1, "worker-a's post gathered");
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
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(await replica.gather(), [{ stream_id: "press-1", since: at(1) }]);
    }
    const warned = lines.filter((l) => l.level === "warn").map((l) => l.key);
    assert.deepEqual(warned.sort(), ["w.bad-since", "w.no-list", "w.not-json"], "once each");
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
    await waitFor(async () => (await replica.gather()).length === 1, "worker-a's post gathered");
    const before = lines.length;
    await nats.server.signal("SIGSTOP");
    try {
      // Answered by the deadline, with the last good list: /stats never waits on NATS for long.
      assert.deepEqual(await replica.gather(), good);
      assert.deepEqual(await replica.gather(), good);
      const warns = lines.slice(before).filter((l) => l.level === "warn");
      assert.equal(warns.length, 1, "one warning for the spell");
    } finally {
      await nats.server.signal("SIGCONT");
    }
    a.list.push({ stream_id: "press-2", since: at(2) });
    await waitFor(
      async () => (await replica.gather()).length === 2,
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
