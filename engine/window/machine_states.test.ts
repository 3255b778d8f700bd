import assert from "node:assert/strict";
import { test } from "node:test";
import { parseRunningCondition } from "../../contracts/running_condition.ts";
import { type MachineMeta, MachineStates } from "./machine_states.ts";

const meta = (running?: string): MachineMeta => ({
  feature_names: ["temp", "speed"],
  running: running ? parseRunningCondition(running) : undefined,
});

/** A stand-in for the windows that notes which streams were restarted. */
function windows() {
  const restarted: string[] = [];
  return { restarted, restart: (id: string) => restarted.push(id) > 0 };
}

test("machineStates.judge tells a stop once, restarts the window on every stopped frame, and lists the stop until the machine runs", () => {
  const machine = new MachineStates();
  const w = windows();
  const m = meta("speed>100");
  assert.equal(machine.judge(m, "a", 1000, [20, 150], w), "running");
  assert.equal(machine.judge(m, "a", 2000, [20, 0], w), "stop");
  assert.equal(machine.judge(m, "a", 3000, [20, 0], w), "stopped");
  assert.deepEqual(w.restarted, ["a", "a"]);
  assert.deepEqual(machine.list(), [{ stream_id: "a", since: new Date(2000).toISOString() }]);
  assert.equal(machine.judge(m, "a", 4000, [20, 150], w), "running");
  assert.deepEqual(machine.list(), []);
  assert.equal(machine.judge(m, "a", 5000, [20, 0], w), "stop", "a new stop is told again");
});

test("machineStates.judge lets every frame run for a model without a condition or without its sensor, and follows the scoring version", () => {
  const machine = new MachineStates();
  const w = windows();
  assert.equal(machine.judge(meta(), "a", 1, [0, 0], w), "running");
  assert.equal(machine.judge(meta("flow>1"), "a", 2, [0, 0], w), "running");
  // Another version with a condition: judged by it from its first frame on.
  assert.equal(machine.judge(meta("temp>5"), "a", 3, [0, 0], w), "stop");
  assert.deepEqual(w.restarted, ["a"]);
});

test("machineStates.judge confirms a stop only after stopFrames failing frames in a row, told at the first one's time", () => {
  const machine = new MachineStates({ stopFrames: 3 });
  const w = windows();
  const m = meta("speed>100");
  assert.equal(machine.judge(m, "a", 1000, [20, 150], w), "running");
  // One reading at the threshold inside a run: dropped and the window restarted, no stop.
  assert.equal(machine.judge(m, "a", 2000, [20, 100], w), "stopping");
  assert.equal(machine.judge(m, "a", 3000, [20, 150], w), "running");
  assert.deepEqual(machine.list(), []);
  assert.deepEqual(w.restarted, ["a"]);
  // Three in a row: the third confirms the stop, which began with the first.
  assert.equal(machine.judge(m, "a", 4000, [20, 0], w), "stopping");
  assert.equal(machine.judge(m, "a", 5000, [20, 0], w), "stopping");
  assert.equal(machine.judge(m, "a", 6000, [20, 0], w), "stop");
  assert.equal(machine.stopAt, 4000);
  assert.equal(machine.judge(m, "a", 7000, [20, 0], w), "stopped");
  assert.deepEqual(machine.list(), [{ stream_id: "a", since: new Date(4000).toISOString() }]);
  assert.equal(w.restarted.length, 5);
  assert.throws(() => new MachineStates({ stopFrames: 0 }), /'RUNNING_STOP_FRAMES'/);
});

test("machineStates.judge takes a stream silent for more than gapMs as stopped after its last frame, with or without a condition", () => {
  const machine = new MachineStates({ stopFrames: 3, gapMs: 60_000 });
  const w = windows();
  assert.equal(machine.judge(meta(), "a", 0, [0, 0], w), "running");
  assert.equal(machine.judge(meta(), "a", 1000, [0, 0], w), "running");
  assert.equal(machine.judge(meta(), "a", 61_000, [0, 0], w), "running", "at the limit: no gap");
  assert.equal(machine.judge(meta(), "a", 62_000, [0, 0], w), "running");
  assert.equal(machine.judge(meta(), "a", 200_000, [0, 0], w), "resumed");
  assert.equal(machine.stopAt, 62_000);
  assert.deepEqual(w.restarted, ["a"]);
  assert.deepEqual(machine.list(), [], "it runs again with this frame");
  // With a condition: a failing frame after the gap confirms the stop at once (the last frame's time).
  const m = meta("speed>100");
  assert.equal(machine.judge(m, "b", 0, [0, 150], w), "running");
  assert.equal(machine.judge(m, "b", 1000, [0, 150], w), "running");
  assert.equal(machine.judge(m, "b", 500_000, [0, 0], w), "stop");
  assert.equal(machine.stopAt, 1000);
  // A machine stopped already before the gap is not told again.
  assert.equal(machine.judge(m, "b", 900_000, [0, 150], w), "running");
  assert.equal(machine.judge(m, "c", 0, [0, 150], w), "running");
  assert.equal(machine.judge(m, "c", 1000, [0, 0], w), "stopping");
  assert.equal(machine.judge(m, "c", 900_000, [0, 150], w), "resumed", "the unconfirmed stop is");
  assert.equal(machine.stopAt, 1000);
});

test("machineStates.judge keeps a slowly sampled stream's windows: a silence is also many of its own steps", () => {
  const machine = new MachineStates({ gapMs: 60_000 });
  const w = windows();
  // One frame every 10 minutes, beyond gapMs: its ordinary step is no silence.
  for (let i = 0; i < 6; i++) {
    assert.equal(machine.judge(meta(), "slow", i * 600_000, [0, 0], w), "running", `frame ${i}`);
  }
  assert.deepEqual(w.restarted, []);
  // Ten of its steps and more is one.
  assert.equal(machine.judge(meta(), "slow", 5 * 600_000 + 6_000_001, [0, 0], w), "resumed");
  assert.deepEqual(w.restarted, ["slow"]);
});

test("machineStates.judge with settleFrames drops a started machine's first frames and keeps it listed as stopped meanwhile", () => {
  const machine = new MachineStates({ settleFrames: 2, gapMs: 60_000 });
  const w = windows();
  const m = meta("speed>100");
  assert.equal(machine.judge(m, "a", 1000, [20, 150], w), "running");
  assert.equal(machine.judge(m, "a", 2000, [20, 0], w), "stop");
  assert.equal(machine.judge(m, "a", 3000, [20, 150], w), "stopped", "settling 1 of 2");
  assert.equal(machine.judge(m, "a", 4000, [20, 150], w), "stopped", "settling 2 of 2");
  assert.deepEqual(machine.list(), [{ stream_id: "a", since: new Date(2000).toISOString() }]);
  assert.equal(machine.judge(m, "a", 5000, [20, 150], w), "running");
  assert.deepEqual(machine.list(), []);
  assert.deepEqual(w.restarted, ["a", "a", "a"], "each dropped frame restarts the window");
  // A failing frame while settling: stopped again, and the settling starts over.
  assert.equal(machine.judge(m, "a", 6000, [20, 0], w), "stop");
  assert.equal(machine.judge(m, "a", 7000, [20, 150], w), "stopped");
  assert.equal(machine.judge(m, "a", 8000, [20, 0], w), "stopped");
  assert.equal(machine.judge(m, "a", 9000, [20, 150], w), "stopped");
  assert.equal(machine.judge(m, "a", 10_000, [20, 150], w), "stopped");
  assert.equal(machine.judge(m, "a", 11_000, [20, 150], w), "running");
  // A silence is a stop too: told with the first frame after it, which settles.
  assert.equal(machine.judge(meta(), "b", 0, [0, 0], w), "running");
  assert.equal(machine.judge(meta(), "b", 1000, [0, 0], w), "running");
  assert.equal(machine.judge(meta(), "b", 500_000, [0, 0], w), "stop");
  assert.equal(machine.stopAt, 1000);
  assert.equal(machine.judge(meta(), "b", 501_000, [0, 0], w), "stopped");
  assert.equal(machine.judge(meta(), "b", 502_000, [0, 0], w), "running");
  assert.throws(() => new MachineStates({ settleFrames: -1 }), /'RUNNING_SETTLE_FRAMES'/);
});

test("machineStates forgets the stream fed least recently, not the one seen first, at its bound", () => {
  const machine = new MachineStates({ gapMs: 60_000, maxStreams: 2 });
  const w = windows();
  for (const t of [0, 1000]) machine.judge(meta(), "a", t, [0, 0], w);
  machine.judge(meta(), "b", 1000, [0, 0], w);
  machine.judge(meta(), "a", 2000, [0, 0], w);
  // A third stream: "b" (fed least recently) is forgotten, "a" keeps its last frame and step.
  machine.judge(meta(), "c", 2000, [0, 0], w);
  assert.equal(machine.judge(meta(), "a", 2000 + 3_600_000, [0, 0], w), "resumed");
});
