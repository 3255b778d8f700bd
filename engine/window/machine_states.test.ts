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
