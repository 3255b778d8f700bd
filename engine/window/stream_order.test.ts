import assert from "node:assert/strict";
import { test } from "node:test";
import { StreamOrder } from "./stream_order.ts";

test("streamOrder accepts increasing times, answers a recent repeat as a duplicate and an older one out of order", () => {
  const order = new StreamOrder(2);
  assert.deepEqual(order.admit(10, 0), { status: "accepted", timestamp: 10 });
  assert.deepEqual(order.admit(20, 0), { status: "accepted", timestamp: 20 });
  assert.deepEqual(order.admit(10, 0), { status: "duplicate", timestamp: 10 });
  assert.deepEqual(order.admit(15, 0), { status: "out_of_order", timestamp: 15, newest: 20 });
  assert.deepEqual(order.admit(undefined, 5), { status: "accepted", timestamp: 21 });
  // Only the last two are remembered.
  assert.deepEqual(order.admit(10, 0), { status: "out_of_order", timestamp: 10, newest: 21 });
});

test("streamOrder withdraws a timestamp whose frame was not kept: its retry is accepted again", () => {
  const order = new StreamOrder(4);
  order.admit(10, 0);
  order.admit(20, 0);
  order.withdraw(20);
  assert.equal(order.newest, 10);
  assert.deepEqual(order.admit(15, 0), { status: "accepted", timestamp: 15 });
  assert.deepEqual(order.admit(20, 0), { status: "accepted", timestamp: 20 });
  // A later frame admitted since stays the newest.
  order.admit(30, 0);
  order.withdraw(20);
  assert.equal(order.newest, 30);
  assert.deepEqual(order.admit(20, 0), { status: "out_of_order", timestamp: 20, newest: 30 });
});

test("streamOrder tells a repeat from another frame at the same millisecond by its checksum", () => {
  const order = new StreamOrder(4);
  assert.deepEqual(order.admit(10, 0, 111), { status: "accepted", timestamp: 10 });
  // Two frames within one millisecond (a client writing microseconds): other values collide.
  assert.deepEqual(order.admit(10, 0, 222), { status: "collision", timestamp: 10 });
  assert.deepEqual(order.admit(10, 0, 111), { status: "duplicate", timestamp: 10 });
  assert.deepEqual(order.admit(20, 0, 333), { status: "accepted", timestamp: 20 });
  // A recent frame's retry is still told apart; an older timestamp is out of order as before.
  assert.deepEqual(order.admit(10, 0, 111), { status: "duplicate", timestamp: 10 });
  assert.deepEqual(order.admit(10, 0, 222), { status: "collision", timestamp: 10 });
  assert.equal(order.admit(15, 0, 111).status, "out_of_order");
  // A frame stamped at reception has no checksum: no frame sent with its date repeats it.
  const stamped = order.admit(undefined, 50, undefined).timestamp;
  assert.deepEqual(order.admit(stamped, 0, 444), { status: "collision", timestamp: stamped });
  // A caller that passes no checksum gets every repeat as a duplicate (the ingest replica).
  assert.deepEqual(order.admit(20, 0), { status: "duplicate", timestamp: 20 });
});

/** Admits `timestamps` in turn, each accepted. */
function admitAll(order: StreamOrder, timestamps: number[]): void {
  for (const ts of timestamps) {
    assert.deepEqual(order.admit(ts, 0), { status: "accepted", timestamp: ts });
  }
}

test("streamOrder accepts the retries of two frames taken back together, whichever went first", () => {
  for (const withdrawn of [
    [10, 20],
    [20, 10],
  ]) {
    const order = new StreamOrder(4);
    admitAll(order, [5, 10, 20]);
    for (const ts of withdrawn) order.withdraw(ts);
    assert.equal(order.newest, 5, `taken back ${withdrawn}`);
    assert.deepEqual(order.admit(10, 0), { status: "accepted", timestamp: 10 });
    assert.deepEqual(order.admit(20, 0), { status: "accepted", timestamp: 20 });
  }
});

test("streamOrder keeps a frame accepted while two others are taken back as the newest", () => {
  for (const withdrawn of [
    [10, 20],
    [20, 10],
  ]) {
    const order = new StreamOrder(4);
    admitAll(order, [5, 10, 20]);
    order.withdraw(withdrawn[0]);
    assert.deepEqual(order.admit(30, 0), { status: "accepted", timestamp: 30 });
    order.withdraw(withdrawn[1]);
    assert.equal(order.newest, 30, `taken back ${withdrawn} around 30`);
    assert.equal(order.admit(10, 0).status, "out_of_order");
    // 30 taken back as well: 10 and 20 get in again, in order.
    order.withdraw(30);
    assert.equal(order.newest, 5);
    assert.deepEqual(order.admit(10, 0), { status: "accepted", timestamp: 10 });
    assert.deepEqual(order.admit(20, 0), { status: "accepted", timestamp: 20 });
  }
});

test("streamOrder falls back to the newest before its records when all of them are taken back", () => {
  const order = new StreamOrder(2);
  admitAll(order, [10, 20, 30]);
  order.withdraw(20);
  order.withdraw(30);
  assert.equal(order.newest, 10);
  assert.equal(order.admit(5, 0).status, "out_of_order");
  assert.deepEqual(order.admit(20, 0), { status: "accepted", timestamp: 20 });
  // The newest before the records taken back too: nothing older is known, its retry gets in.
  admitAll(order, [40, 50]);
  order.withdraw(20);
  order.withdraw(40);
  order.withdraw(50);
  assert.equal(order.newest, Number.NEGATIVE_INFINITY);
  assert.deepEqual(order.admit(20, 0), { status: "accepted", timestamp: 20 });
});

/** A small seeded generator (mulberry32): the same sequence on every run. */
function seeded(seed: number): () => number {
  let a = seed;
  return function next() {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Random admissions, retries and withdrawals of one stream, checked against every frame's fate:
 * `inFlightFor` is how many admissions a frame stays in flight before it is kept for good.
 */
function checkAgainstFates(
  seed: number,
  recentSize: number,
  inFlightFor: number,
  check: (newest: number, kept: Set<number>, withdrawn: Set<number>) => void,
) {
  const random = seeded(seed);
  const order = new StreamOrder(recentSize);
  const kept = new Set<number>();
  const withdrawn = new Set<number>();
  let inFlight: { ts: number; admitted: number }[] = [];
  let admitted = 0;
  let next = 1;
  for (let step = 0; step < 60; step++) {
    if (inFlight.length > 0 && random() < 0.5) {
      const [frame] = inFlight.splice(Math.floor(random() * inFlight.length), 1);
      if (random() < 0.5) continue;
      order.withdraw(frame.ts);
      kept.delete(frame.ts);
      withdrawn.add(frame.ts);
    } else {
      // A new frame, or the retry of one taken back.
      const retry = random() < 0.4 && withdrawn.size > 0;
      const ts = retry ? [...withdrawn][Math.floor(random() * withdrawn.size)] : next++;
      if (order.admit(ts, 0).status !== "accepted") continue;
      kept.add(ts);
      withdrawn.delete(ts);
      admitted++;
      inFlight = inFlight.filter((frame) => admitted - frame.admitted < inFlightFor);
      inFlight.push({ ts, admitted });
    }
    check(order.newest, kept, withdrawn);
  }
}

test("streamOrder's newest is the newest frame kept, in any order of admissions and withdrawals", () => {
  for (let seed = 1; seed <= 200; seed++) {
    // Each frame taken back, if it is, while among the last 4 admitted: exact.
    checkAgainstFates(seed, 4, 4, (newest, kept) => {
      assert.equal(newest, Math.max(Number.NEGATIVE_INFINITY, ...kept), `seed ${seed}`);
    });
    // In flight for longer than the ring remembers: never newer than the newest kept, never a
    // frame taken back, so no retry is refused for good.
    checkAgainstFates(seed, 4, 12, (newest, kept, withdrawn) => {
      assert.ok(newest <= Math.max(Number.NEGATIVE_INFINITY, ...kept), `seed ${seed}`);
      assert.ok(!withdrawn.has(newest), `seed ${seed}: newest ${newest} was taken back`);
    });
  }
});
