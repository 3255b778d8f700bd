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
  const ring = new ReplayRing(2, { maxStreams: 2 });
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

test("replayRing forgets a stream silent longer than its window survives", () => {
  const ring = new ReplayRing(3, { idleMs: 300_000 });
  // "old" sends every second, then stops at t = 2 s; "live" goes on.
  for (let i = 0; i < 3; i++) ring.remember("old", 10 + i, i * 1000);
  for (let i = 0; i < 3; i++) ring.remember("live", 20 + i, i * 1000);
  assert.equal(ring.replayPoint(2000), 10);
  let seq = 23;
  let at = 3000;
  for (; at <= 302_000; at += 1000) ring.remember("live", seq++, at);
  // 300 s after its last frame: its next one would start its window afresh; kept until then.
  assert.equal(ring.replayPoint(302_000), 10);
  ring.remember("live", seq++, 302_001);
  const point = ring.replayPoint(302_001);
  assert.equal(point, seq - 3, "the replay point moved past the silent stream");
  assert.equal(ring.streams, 1);
  // Back after the silence: it holds the point again from its new frames only.
  ring.remember("old", seq, 302_500);
  assert.equal(ring.replayPoint(302_500), seq - 3);
  ring.remember("live", seq + 1, 303_000);
  ring.remember("live", seq + 2, 304_000);
  ring.remember("live", seq + 3, 305_000);
  assert.equal(ring.replayPoint(305_000), seq);
});

test("replayRing keeps a slowly sampled stream for 10 of its steps", () => {
  const ring = new ReplayRing(2, { idleMs: 60_000 });
  // Every 10 minutes: its window survives 100 minutes without a frame, as the gap rule has it.
  ring.remember("slow", 1, 0);
  ring.remember("slow", 2, 600_000);
  ring.remember("fast", 3, 600_000 + 5_999_000);
  assert.equal(ring.replayPoint(600_000 + 6_000_000), 1);
  assert.equal(ring.replayPoint(600_000 + 6_000_001), 3);
});

test("replayRing forgets a stream whose frames aged out of the stream", () => {
  const ring = new ReplayRing(2, { idleMs: 3_600_000, maxAgeMs: 120_000 });
  ring.remember("slow", 1, 0);
  ring.remember("slow", 2, 1_000_000);
  ring.remember("live", 3, 1_120_000);
  assert.equal(ring.replayPoint(1_120_000), 1);
  // Its step (1000 s) would keep it for hours, but its newest frame left the stream.
  assert.equal(ring.replayPoint(1_120_001), 3);
});

test("replayRing without a bus time forgets no stream", () => {
  const ring = new ReplayRing(2, { idleMs: 1000, maxAgeMs: 1000 });
  ring.remember("a", 4, 0);
  assert.equal(ring.replayPoint(), 4);
  assert.throws(() => new ReplayRing(2, { idleMs: 0 }), /'idleMs'/);
  assert.throws(() => new ReplayRing(2, { maxAgeMs: Number.NaN }), /'maxAgeMs'/);
});

test("replayRing keeps more frames per stream once a version with running levels is served", () => {
  // Made under a version without running levels (window of 3: 2 frames rebuild it).
  const ring = new ReplayRing(2);
  for (const seq of [1, 2, 3]) ring.remember("a", seq);
  assert.equal(ring.replayPoint(), 2);
  // One with levels over 3 readings: 5 frames rebuild a window. Those kept so far stay.
  ring.keepAtLeast(5);
  assert.equal(ring.keep, 5);
  for (const seq of [4, 5, 6]) ring.remember("a", seq);
  assert.equal(ring.replayPoint(), 2, "2 .. 6: the last 5 frames");
  ring.remember("a", 7);
  assert.equal(ring.replayPoint(), 3);
  // A stream first met now keeps 5 too; an older version served again keeps no fewer.
  for (const seq of [8, 9, 10, 11, 12]) ring.remember("b", seq);
  ring.keepAtLeast(2);
  assert.equal(ring.keep, 5);
  for (const seq of [13, 14, 15, 16]) ring.remember("b", seq);
  assert.equal(ring.replayPoint(), 3, "a: 3 .. 7; b: 12 .. 16");
  assert.throws(() => ring.keepAtLeast(1.5), /'keep'/);
});

test("replayRing keeps a stream's frames across its bursts while it holds the point", () => {
  // A store-and-forward gateway: 4 frames posted 20 ms apart, every 6 minutes of bus time (past
  // idleMs); nothing else on the partition, so no commit sees it silent. Its window runs on from
  // burst to burst (frame times without a gap), so a new owner needs the frames before a burst.
  const ring = new ReplayRing(5, { idleMs: 300_000 });
  let seq = 0;
  for (let burst = 0; burst < 3; burst++) {
    for (let k = 0; k < 4; k++) {
      const at = burst * 360_000 + k * 20;
      ring.remember("gw", ++seq, at);
      ring.replayPoint(at);
    }
  }
  assert.equal(ring.replayPoint(720_060), 8, "the last 5 frames: 8 .. 12, over two bursts");
  assert.equal(ring.streams, 1);
});

test("replayRing: a stream silent after its first frame holds the point no longer than idleMs, nor again from that frame", () => {
  const ring = new ReplayRing(3, { idleMs: 300_000 });
  ring.remember("once", 1, 0);
  ring.remember("live", 2, 0);
  assert.equal(ring.replayPoint(300_000), 1);
  ring.remember("live", 3, 300_001);
  assert.equal(ring.replayPoint(300_001), 2);
  // Its first frame may be purged now: it holds the point from its second one on.
  ring.remember("once", 4, 600_000);
  ring.remember("live", 5, 600_000);
  assert.equal(ring.replayPoint(600_000), 2);
  ring.remember("live", 6, 600_001);
  ring.remember("live", 7, 600_002);
  assert.equal(ring.replayPoint(600_002), 4, "not 1");
});
