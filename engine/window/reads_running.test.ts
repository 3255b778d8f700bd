import assert from "node:assert/strict";
import { test } from "node:test";
import { parseRunningCondition } from "../../contracts/running_condition.ts";
import { type MachineMeta, MachineStates } from "./machine_states.ts";
import { DOUBT_SHARE, doubtFrames } from "./reads_running.ts";

// Six sensors: `speed` the running condition's, `drift` following a running level, four judged
// against their typical (running) range 9..11.
const meta: MachineMeta = {
  feature_names: ["speed", "t1", "t2", "t3", "t4", "drift"],
  running: parseRunningCondition("speed>100"),
  typical: {
    description: "1st to 99th percentile",
    low: [0, 9, 9, 9, 9, 0],
    high: [200, 11, 11, 11, 11, 1],
  },
  baseline: { alpha: 0.1, span: 10, features: [5] },
  window_size: 4,
};
const N = doubtFrames(meta.window_size);
const windows = { restart: () => true };

/** A frame at `speed`, the judged sensors at `level` plus a wiggle that differs frame to frame. */
const frame = (n: number, speed: number, level = 10): number[] => [
  speed,
  ...[1, 2, 3, 4].map((k) => level + 0.1 * Math.sin(n * k)),
  1e6, // the running level's sensor: out of its typical range, never judged
];

function feed(machine: MachineStates, from: number, count: number, make: (n: number) => number[]) {
  for (let n = from; n < from + count; n++) machine.judge(meta, "m1", n * 1000, make(n), windows);
}

test("a stop whose sensors stay in their running range and keep moving is in doubt after its stretch, told once, and cleared when the machine runs", () => {
  const told: { stream: string; sensor: string; since: string; in_range: number }[] = [];
  const machine = new MachineStates({ onReadsRunning: (stream, d) => told.push({ stream, ...d }) });
  feed(machine, 0, 5, (n) => frame(n, 150));
  // The condition's sensor dies: it reads 0, everything else runs on.
  feed(machine, 5, N - 1, (n) => frame(n, 0));
  assert.equal(machine.list()[0].reads_running, undefined, "not before a full stretch");
  feed(machine, 5 + N - 1, 1, (n) => frame(n, 0));
  // The stretch's first frame has no predecessor to move from: reads as running from 6 on.
  const entry = machine.list()[0];
  assert.equal(entry.since, new Date(5000).toISOString());
  assert.deepEqual(entry.reads_running, {
    since: new Date(5000).toISOString(),
    sensor: "speed",
    in_range: 1,
  });
  feed(machine, 5 + N, 40, (n) => frame(n, 0));
  assert.equal(told.length, 1, "told once");
  assert.equal(told[0].stream, "m1");
  assert.equal(machine.list()[0].reads_running?.since, new Date(5000).toISOString(), "since stays");
  // The sensor reads again: running, no stop listed.
  feed(machine, 100, 1, (n) => frame(n, 150));
  assert.deepEqual(machine.list(), []);
});

test("a real stop leaves doubt out: its sensors leave their running range, or hold their last readings", () => {
  const machine = new MachineStates({ onReadsRunning: () => assert.fail("no doubt") });
  feed(machine, 0, 5, (n) => frame(n, 150));
  // Cooling down out of the running range.
  feed(machine, 5, 3 * N, (n) => frame(n, 0, 10 - (n - 5) * 0.5));
  assert.equal(machine.list()[0].reads_running, undefined);
  // Another stop: every reading frozen at its last running value (a feed holding its values).
  const frozen = frame(200, 0);
  feed(machine, 200, 1, (n) => frame(n, 150));
  feed(machine, 201, 3 * N, () => frozen);
  assert.equal(machine.list()[0].reads_running, undefined);
});

test("the doubt needs most of the stretch to move, not every frame", () => {
  const machine = new MachineStates();
  feed(machine, 0, 2, (n) => frame(n, 150));
  // One frame in six repeats the one before (a feed that held a value): most still move.
  assert.ok(5 / 6 > DOUBT_SHARE);
  const held = (n: number) => frame(n % 6 === 0 ? n - 1 : n, 0);
  feed(machine, 2, 2 * N, held);
  assert.ok(machine.list()[0].reads_running, "in doubt");
  // Half the frames held: the doubt clears.
  feed(machine, 2 + 2 * N, 2 * N, (n) => frame(n % 2 === 0 ? n - 1 : n, 0));
  assert.equal(machine.list()[0].reads_running, undefined);
});

test("a real stop whose readings keep their noise is no doubt once a few of its sensors leave their running range", () => {
  // 200 judged sensors, each in 9..11 while running; the condition's sensor first.
  const F = 201;
  const wide: MachineMeta = {
    feature_names: Array.from({ length: F }, (_, f) => (f === 0 ? "speed" : `s${f}`)),
    running: parseRunningCondition("speed>100"),
    typical: {
      description: "1st to 99th percentile",
      low: Array.from({ length: F }, (_, f) => (f === 0 ? 0 : 9)),
      high: Array.from({ length: F }, (_, f) => (f === 0 ? 200 : 11)),
    },
    window_size: 4,
  };
  const noisy = (n: number, speed: number, fallen = 0) =>
    Array.from({ length: F }, (_, f) =>
      f === 0 ? speed : f <= fallen ? 0.01 * Math.sin(n + f) : 10 + 0.5 * Math.sin(n * 7 + f),
    );
  const judge = (
    machine: MachineStates,
    stream: string,
    from: number,
    count: number,
    make: (n: number) => number[],
  ) => {
    for (let n = from; n < from + count; n++)
      machine.judge(wide, stream, n * 1000, make(n), windows);
  };
  const machine = new MachineStates();
  // The flows of the line: 6 sensors of 200 (3 %) fall to 0 with the drive; the rest keep their noise.
  judge(machine, "real", 0, 40, (n) => noisy(n, 150));
  judge(machine, "real", 40, 3 * N, (n) => noisy(n, 0, 6));
  assert.equal(machine.list()[0].reads_running, undefined, "a real stop");
  // The drive's sensor dies; everything else runs on, noise and all.
  judge(machine, "dead", 0, 40, (n) => noisy(n, 150));
  judge(machine, "dead", 40, N, (n) => noisy(n, 0));
  const dead = machine.list().find((m) => m.stream_id === "dead");
  assert.ok(dead?.reads_running, "a dead sensor");
  assert.equal(dead.reads_running.in_range, 1);
});

test("a model without typical ranges, or with too few judged sensors, is never in doubt", () => {
  const machine = new MachineStates({ onReadsRunning: () => assert.fail("no doubt") });
  const bare: MachineMeta = { feature_names: meta.feature_names, running: meta.running };
  for (let n = 0; n < 3 * N; n++)
    machine.judge(bare, "m1", n * 1000, frame(n, n < 2 ? 150 : 0), windows);
  assert.equal(machine.list()[0].reads_running, undefined);
  const few: MachineMeta = {
    feature_names: ["speed", "t1", "t2"],
    running: meta.running,
    typical: { description: "1st to 99th percentile", low: [0, 9, 9], high: [200, 11, 11] },
  };
  const other = new MachineStates({ onReadsRunning: () => assert.fail("no doubt") });
  for (let n = 0; n < 3 * N; n++) {
    other.judge(few, "m1", n * 1000, frame(n, n < 2 ? 150 : 0).slice(0, 3), windows);
  }
  assert.equal(other.list()[0].reads_running, undefined);
});
