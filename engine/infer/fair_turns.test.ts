import assert from "node:assert/strict";
import { test } from "node:test";
import { FairTurns } from "./fair_turns.ts";

test("FairTurns hands turns round-robin among the lanes waiting", async () => {
  const turns = new FairTurns(2);
  const order: string[] = [];
  await turns.take(0);
  // Lane 0 queues five runs before lane 1 queues one: lane 1 still goes second.
  const runs = [
    ...Array.from({ length: 5 }, (_, i) => turns.take(0).then(() => order.push(`a${i}`))),
    turns.take(1).then(() => order.push("b0")),
  ];
  for (let i = 0; i < 6; i++) {
    turns.give();
    await new Promise((r) => setImmediate(r));
  }
  await Promise.all(runs);
  assert.deepEqual(order, ["b0", "a0", "a1", "a2", "a3", "a4"]);
  turns.give();
  // Free again: a take resolves at once.
  await turns.take(1);
});

test("FairTurns refuses a lane count below one", () => {
  assert.throws(() => new FairTurns(0), /'lanes' must be an integer >= 1/);
});
