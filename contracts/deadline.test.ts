import assert from "node:assert/strict";
import { test } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { deadlineSignal } from "./deadline.ts";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

const aborted = (signal: AbortSignal) =>
  new Promise<unknown>((resolve) => signal.addEventListener("abort", () => resolve(signal.reason)));

test("deadlineSignal aborts with a TimeoutError when its time is up, garbage collections meanwhile", async () => {
  const stop = new AbortController();
  // Only the listener's promise refers to the signal, as in a wait for the next frame.
  const reason = (async () => aborted(deadlineSignal(100, stop.signal).signal))();
  const collecting = setInterval(gc, 5);
  try {
    const outcome = await Promise.race([
      reason,
      new Promise((resolve) => setTimeout(() => resolve("still waiting"), 2000)),
    ]);
    assert.ok(outcome instanceof DOMException, String(outcome));
    assert.equal(outcome.name, "TimeoutError");
  } finally {
    clearInterval(collecting);
  }
});

test("deadlineSignal aborts with another signal's reason, at once when that one already has", async () => {
  const stop = new AbortController();
  const deadline = deadlineSignal(60_000, undefined, stop.signal);
  const reason = aborted(deadline.signal);
  stop.abort(new Error("shutdown"));
  assert.equal(((await reason) as Error).message, "shutdown");

  const late = deadlineSignal(60_000, stop.signal);
  assert.equal(late.signal.aborted, true);
  assert.equal((late.signal.reason as Error).message, "shutdown");
});

test("deadlineSignal's clear stops the timer and lets go of the other signals", async () => {
  const stop = new AbortController();
  const deadline = deadlineSignal(20, stop.signal);
  deadline.clear();
  await new Promise((resolve) => setTimeout(resolve, 60));
  assert.equal(deadline.signal.aborted, false, "the timer was stopped");
  stop.abort();
  assert.equal(deadline.signal.aborted, false, "the other signal was let go");
});
