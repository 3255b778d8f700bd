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
  ring.remember("slow", 3, 2_000_000);
  ring.remember("live", 4, 2_120_000);
  assert.equal(
    ring.replayPoint(2_120_000),
    3,
    "its first frame left the stream before its next came",
  );
  // Its step (1000 s) would keep it for hours, but its newest frame left the stream.
  assert.equal(ring.replayPoint(2_120_001), 4);
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

test("replayRing: a stream back after a silence that released the replay point gets the same window at either owner", () => {
  const idleMs = 300_000;
  const keep = 3;
  // "live" sends every second; "gw" (a store-and-forward gateway) sends for 200 s, loses its
  // uplink for 400 s of bus time, then forwards its backlog in a burst (its frame times run on
  // without a gap, which the ring never looks at): bus sequence, stream, receive time.
  const frames: { seq: number; stream: string; at: number }[] = [];
  let seq = 1;
  for (let s = 0; s < 600; s++) {
    if (s < 200) frames.push({ seq: seq++, stream: "gw", at: s * 1000 });
    frames.push({ seq: seq++, stream: "live", at: s * 1000 });
  }
  for (let k = 0; k < 40; k++) {
    frames.push({ seq: seq++, stream: "gw", at: 600_000 + k * 50 });
    frames.push({ seq: seq++, stream: "live", at: 600_000 + k * 50 });
  }
  /** An owner: its ring, and per stream the frames its window was built from (the last `keep + 1`). */
  const owner = () => ({
    ring: new ReplayRing(keep, { idleMs }),
    windows: new Map<string, number[]>(),
    busTime: 0,
  });
  type Owner = ReturnType<typeof owner>;
  const take = (o: Owner, f: (typeof frames)[number], i: number) => {
    o.busTime = Math.max(o.busTime, f.at);
    const restarts = o.ring.remember(f.stream, f.seq, f.at);
    const window = restarts ? [] : (o.windows.get(f.stream) ?? []);
    window.push(f.seq);
    o.windows.set(f.stream, window.slice(-(keep + 1)));
    // A commit every 10 frames.
    if (i % 10 === 0) o.ring.replayPoint(o.busTime);
  };
  // Taken over at every 20th frame from the silence on: the new owner reads from the committed
  // replay point; from there on both owners build every window from the same frames.
  for (let takeover = 400; takeover < frames.length; takeover += 20) {
    const old = owner();
    for (let i = 0; i < takeover; i++) take(old, frames[i], i);
    const point = old.ring.replayPoint(old.busTime);
    const successor = owner();
    for (let i = frames.findIndex((f) => f.seq >= point); i < takeover; i++) {
      take(successor, frames[i], i);
    }
    for (let i = takeover; i < frames.length; i++) {
      const f = frames[i];
      take(old, f, i);
      take(successor, f, i);
      assert.deepEqual(
        successor.windows.get(f.stream),
        old.windows.get(f.stream),
        `taken over at frame ${takeover}: ${f.stream}'s window at bus time ${f.at}`,
      );
    }
    assert.equal(successor.ring.replayPoint(old.busTime), old.ring.replayPoint(old.busTime));
  }
});

test("replayRing: a stream silent after its first frame holds the point no longer than idleMs, nor again from that frame", () => {
  const ring = new ReplayRing(3, { idleMs: 300_000 });
  ring.remember("once", 1, 0);
  ring.remember("live", 2, 0);
  assert.equal(ring.replayPoint(300_000), 1);
  ring.remember("live", 3, 300_001);
  assert.equal(ring.replayPoint(300_001), 2);
  // No step yet: not a silence that restarts its window (a slow stream's first interval), but
  // its first frame may be purged now, so it holds the point from its second one on.
  assert.equal(ring.remember("once", 4, 600_000), false);
  ring.remember("live", 5, 600_000);
  assert.equal(ring.replayPoint(600_000), 2);
  ring.remember("live", 6, 600_001);
  ring.remember("live", 7, 600_002);
  assert.equal(ring.replayPoint(600_002), 4, "not 1");
});
