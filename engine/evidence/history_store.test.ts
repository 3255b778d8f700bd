import assert from "node:assert/strict";
import { test } from "node:test";
import { HistoryStore, historyReport } from "./history_store.ts";

const frame = (...values: number[]) => Float32Array.from(values);
const values = (span: ReturnType<HistoryStore["upTo"]>, f: number) =>
  Array.from({ length: span?.length ?? 0 }, (_, i) => span!.value(i, f));

test("historyStore keeps each stream's last frames and finds them by timestamp", () => {
  const store = new HistoryStore({ frames: 4, features: 2, maxBytes: 1 << 20 });
  for (let t = 1; t <= 6; t++) store.record("a", t * 1000, frame(t, -t));
  const span = store.upTo("a", 6000)!;
  assert.deepEqual(values(span, 0), [3, 4, 5, 6], "the oldest frames scrolled out");
  assert.deepEqual(values(span, 1), [-3, -4, -5, -6]);
  assert.equal(span.time(0), 3000);
  assert.deepEqual(
    values(store.upTo("a", 5000), 0),
    [3, 4, 5],
    "frames after the alert's stay out",
  );
  assert.deepEqual(values(store.span("a", 4000, 5000), 0), [4, 5]);
  assert.equal(store.span("a", 1000, 5000), undefined, "an onset no longer kept");
  assert.equal(store.upTo("a", 5500), undefined, "a frame never kept");
  assert.equal(store.upTo("b", 5000), undefined);
});

test("historyStore leaves out a frame not newer than the newest kept (a replay)", () => {
  const store = new HistoryStore({ frames: 4, features: 1, maxBytes: 1 << 20 });
  for (let t = 1; t <= 4; t++) store.record("a", t * 1000, frame(t));
  // A worker that took its partition back replays frames 2..4, then goes on with 5.
  for (let t = 2; t <= 5; t++) store.record("a", t * 1000, frame(10 * t));
  assert.deepEqual(values(store.upTo("a", 5000), 0), [2, 3, 4, 50]);
});

test("historyStore holds as many streams as its budget, handing an idle stream's ring to a newcomer", () => {
  // 3 frames x (2 features x 4 + 8) bytes = 48 bytes a stream: 100 bytes hold two.
  let now = 0;
  const store = new HistoryStore({
    frames: 3,
    features: 2,
    maxBytes: 100,
    idleMs: 10_000,
    clock: () => now,
  });
  assert.equal(store.capacity, 2);
  store.record("a", 1000, frame(1, 1));
  store.record("b", 1000, frame(2, 2));
  now = 5_000;
  store.record("a", 2000, frame(3, 3));
  now = 10_001;
  store.record("c", 1000, frame(4, 4));
  assert.equal(store.streams, 2);
  assert.equal(store.evictions, 1);
  assert.equal(store.bytes, 96);
  assert.equal(store.upTo("b", 1000), undefined, "b went unfed longer than idleMs");
  assert.deepEqual(values(store.upTo("a", 2000), 0), [1, 3]);
  now = 15_002;
  store.record("b", 2000, frame(5, 5));
  assert.deepEqual(
    values(store.upTo("b", 2000), 0),
    [5],
    "an evicted stream starts again from its next frame",
  );
  assert.equal(store.upTo("a", 2000), undefined, "and took the ring of the idle one, a");
  assert.deepEqual(values(store.upTo("c", 1000), 0), [4]);
});

test("historyStore lets streams keep their rings while fed, so round-robin streams do not thrash", () => {
  // Room for two streams and a shared ring of two frames, five streams fed in turn at 1 Hz:
  // least-recently-used eviction would hand each newcomer the ring of a stream about to be fed,
  // and no stream would keep two frames.
  let now = 0;
  const store = new HistoryStore({
    frames: 4,
    features: 1,
    maxBytes: (2 * 4 + 2) * (4 + 8),
    idleMs: 4000,
    clock: () => now,
    sharedFrames: 2,
  });
  assert.equal(store.capacity, 2);
  const streams = ["a", "b", "c", "d", "e"];
  for (let t = 0; t < 6; t++, now += 1000) {
    for (const [k, s] of streams.entries()) store.record(s, t * 1000, frame(10 * t + k));
  }
  assert.equal(store.evictions, 0);
  assert.equal(store.streams, 2);
  assert.deepEqual(values(store.upTo("a", 5000), 0), [20, 30, 40, 50], "whole rings, kept");
  assert.deepEqual(values(store.upTo("b", 5000), 0), [21, 31, 41, 51]);
  for (const s of ["c", "d", "e"])
    assert.equal(store.upTo(s, 5000), undefined, `${s} went without`);
  assert.equal(store.ringless, 3 * 6);
  assert.equal(store.bytes, (2 * 4 + 2) * 12, "the rings and the shared ring, within budget");
  // The shared ring keeps the newest frames of streams without one, as single frames only.
  assert.deepEqual(values(store.span("e", 5000, 5000), 0), [54]);
  assert.deepEqual(values(store.span("d", 5000, 5000), 0), [53]);
  assert.equal(store.span("c", 5000, 5000), undefined, "overwritten by d's and e's");
  assert.equal(store.span("e", 4000, 4000), undefined);
  // a goes quiet; once it has been unfed longer than idleMs, the next newcomer gets its ring.
  for (let t = 6; t < 11; t++, now += 1000) {
    for (const s of ["b", "c", "d", "e"]) store.record(s, t * 1000, frame(10 * t));
  }
  assert.equal(store.evictions, 1);
  assert.equal(store.upTo("a", 5000), undefined, "the quiet stream gave its ring up");
  assert.deepEqual(values(store.upTo("c", 10_000), 0), [100], "to the first newcomer after");
  assert.equal(store.upTo("d", 10_000), undefined, "b is still fed: d waits");
  assert.deepEqual(values(store.upTo("b", 10_000), 0), [70, 80, 90, 100]);
});

test("historyStore keeps nothing with zero frames or a budget below one stream", () => {
  for (const store of [
    new HistoryStore({ frames: 0, features: 2, maxBytes: 1 << 20 }),
    new HistoryStore({ frames: 300, features: 25_000, maxBytes: 1 << 20 }),
  ]) {
    store.record("a", 1000, frame(1, 1));
    assert.equal(store.capacity, 0);
    assert.equal(store.upTo("a", 1000), undefined);
  }
  const one = new HistoryStore({ frames: 3, features: 2, maxBytes: 60, sharedFrames: 2 });
  assert.deepEqual(
    [one.capacity, one.sharedFrames],
    [1, 0],
    "a budget of one ring keeps it for a stream rather than share part of it",
  );
  assert.throws(
    () => new HistoryStore({ frames: -1, features: 2, maxBytes: 1 }),
    /'EVIDENCE_HISTORY_FRAMES' must be an integer >= 0, got -1/,
  );
  assert.throws(
    () => new HistoryStore({ frames: 1, features: 2, maxBytes: 1, idleMs: Number.NaN }),
    /'idleMs' must be a number >= 0, got NaN/,
  );
  assert.throws(
    () => new HistoryStore({ frames: 1, features: 2, maxBytes: 1, sharedFrames: -1 }),
    /'sharedFrames' must be an integer >= 0, got -1/,
  );
});

test("historyStore reports its budget and warns of streams without a ring at most once a minute", () => {
  // 3 frames x (2 features x 4 + 8) bytes = 48 bytes a stream: 60 bytes hold one.
  const store = new HistoryStore({ frames: 3, features: 2, maxBytes: 60, sharedFrames: 0 });
  store.record("a", 1000, frame(1, 1));
  assert.equal(store.shortfall(0), undefined, "every stream has its ring");
  store.record("b", 1000, frame(2, 2));
  store.record("b", 2000, frame(2, 2));
  assert.deepEqual(store.report(), {
    streams: 1,
    capacity: 1,
    bytes: 48,
    ringless: 2,
    evictions: 0,
  });
  assert.deepEqual(store.shortfall(0), {
    frames: 3,
    capacity: 1,
    streams: 1,
    ringless_since: 2,
    ringless: 2,
    evictions: 0,
  });
  store.record("b", 3000, frame(2, 2));
  assert.equal(store.shortfall(59_999), undefined, "said less than a minute ago");
  assert.equal(store.shortfall(60_000)?.ringless_since, 1, "counted since the line before");
  assert.equal(store.shortfall(200_000), undefined, "nothing new to say");
  const other = new HistoryStore({ frames: 3, features: 2, maxBytes: 1 << 20 });
  other.record("c", 1000, frame(3, 3));
  assert.deepEqual(historyReport([store, other]), {
    streams: 2,
    capacity: 1 + other.capacity,
    bytes: 96,
    ringless: 3,
    evictions: 0,
  });
});

test("historyStore warns once of a budget below one stream's ring, and not of history turned off", () => {
  const small = new HistoryStore({ frames: 300, features: 2, maxBytes: 100 });
  assert.equal(small.shortfall(0)?.capacity, 0);
  assert.equal(small.shortfall(120_000), undefined, "the budget does not change: said once");
  const off = new HistoryStore({ frames: 0, features: 2, maxBytes: 1 << 20 });
  assert.equal(off.shortfall(0), undefined, "EVIDENCE_HISTORY_FRAMES=0 asks for none");
});
