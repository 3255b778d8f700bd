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
  const before = order.newest;
  order.admit(20, 0);
  order.withdraw(20, before);
  assert.equal(order.newest, 10);
  assert.deepEqual(order.admit(15, 0), { status: "accepted", timestamp: 15 });
  assert.deepEqual(order.admit(20, 0), { status: "accepted", timestamp: 20 });
  // A later frame admitted since stays the newest.
  const at20 = order.newest;
  order.admit(30, 0);
  order.withdraw(20, at20 - 10);
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
