import assert from "node:assert/strict";
import { test } from "node:test";
import { ReplayRing } from "./replay_ring.ts";

test("replayRing starts a re-read at the oldest of each stream's last frames", () => {
  const ring = new ReplayRing(3);
  assert.equal(ring.replayPoint(), 0);
  ring.remember("a", 10);
  ring.remember("b", 11);
  ring.remember("a", 12);
  assert.equal(ring.replayPoint(), 10);
  ring.remember("a", 13);
  ring.remember("a", 14);
  // "a" keeps 12, 13, 14; "b" still needs 11.
  assert.equal(ring.replayPoint(), 11);
  for (const seq of [15, 16, 17]) ring.remember("b", seq);
  assert.equal(ring.replayPoint(), 12);
});

test("replayRing forgets the least recently active stream beyond its bound", () => {
  const ring = new ReplayRing(2, 2);
  ring.remember("a", 1);
  ring.remember("b", 2);
  ring.remember("a", 3);
  ring.remember("c", 4);
  assert.equal(ring.streams, 2);
  // "b" was forgotten; "a" (1, 3) and "c" (4) remain.
  assert.equal(ring.replayPoint(), 1);
});

test("replayRing with nothing to keep never holds a replay point", () => {
  const ring = new ReplayRing(0);
  ring.remember("a", 5);
  assert.equal(ring.replayPoint(), 0);
  assert.throws(() => new ReplayRing(-1), /'keep'/);
});
