import assert from "node:assert/strict";
import { test } from "node:test";
import {
  IncidentTracker,
  type IncidentTrackerOptions,
  type ObservedWindow,
  type SensorEvidence,
} from "./incident_tracker.ts";

const options: IncidentTrackerOptions = {
  nFeatures: 100,
  modelVersion: "m@1",
  confirmK: 1,
  confirmN: 1,
  quietWindows: 3,
  updateMinMs: 10_000,
  updateSeverityRise: 2,
  maxFeatures: 4,
};
const ev = (f: number, severity: number): SensorEvidence => ({
  feature_idx: f,
  score: Math.min(1, severity / 10),
  severity,
  statistic: 0,
  window: [0, 0, 0, 0, severity],
});
/** A window at second `t` flagging `sensors` ([feature, severity]). */
const win = (t: number, sensors: [number, number][] = [], streamId = "s"): ObservedWindow => ({
  streamId,
  timestamp: 1_000_000 + t * 1000,
  flagged: sensors.map(([f]) => f),
  evidence: sensors.map(([f, s]) => ev(f, s)).sort((a, b) => b.severity - a.severity),
});
function play(tracker: IncidentTracker, windows: ObservedWindow[]) {
  return windows.flatMap((w) => tracker.observe(w));
}

test("incidentTracker opens on the first anomalous window and resolves after the quiet windows", () => {
  const t = new IncidentTracker(options);
  assert.deepEqual(t.observe(win(0)), []);
  const [opened] = t.observe(win(1, [[7, 9]]));
  assert.equal(opened.event, "opened");
  assert.equal(opened.startedAt, win(1).timestamp);
  assert.deepEqual(
    opened.sensors.map((s) => s.feature_idx),
    [7],
  );
  assert.deepEqual(play(t, [win(2, [[7, 9.5]]), win(3), win(4)]), []);
  const [resolved, ...more] = t.observe(win(5));
  assert.equal(more.length, 0);
  assert.equal(resolved.event, "resolved");
  assert.equal(resolved.reason, "quiet");
  assert.equal(resolved.incidentId, opened.incidentId);
  assert.equal(resolved.timestamp, win(5).timestamp);
  assert.equal(resolved.sensors[0].severity, 9.5, "the peak evidence");
  assert.equal(t.openIncidents, 0);
  assert.equal(t.has("s"), false, "a resolved stream holds no state");
});

test("incidentTracker keeps an incident open across short gaps (hysteresis)", () => {
  const t = new IncidentTracker(options);
  const events = play(t, [win(0, [[1, 9]]), win(1), win(2), win(3, [[1, 9]]), win(4), win(5)]);
  assert.deepEqual(
    events.map((e) => e.event),
    ["opened"],
  );
  assert.equal(t.openIncidents, 1);
});

test("incidentTracker sends updated for new sensors or a material severity rise, throttled", () => {
  const t = new IncidentTracker(options);
  const opened = t.observe(win(0, [[1, 9]]))[0];
  assert.deepEqual(t.observe(win(5, [[2, 9]])), [], "a new sensor within the throttle waits");
  const [update] = t.observe(win(10, [[1, 9]]));
  assert.equal(update.event, "updated", "sent once the throttle has passed");
  assert.equal(update.incidentId, opened.incidentId);
  assert.equal(update.sensorCount, 2);
  assert.deepEqual(t.observe(win(20, [[1, 10]])), [], "a small rise is not worth an update");
  const [rise] = t.observe(win(30, [[1, 11.5]]));
  assert.equal(rise.event, "updated");
  assert.equal(rise.maxSeverity, 11.5);
  assert.deepEqual(
    t.observe(
      win(40, [
        [1, 11],
        [2, 9],
      ]),
    ),
    [],
    "nothing new",
  );
});

test("incidentTracker confirms k of n windows before opening, from the first of them", () => {
  const t = new IncidentTracker({ ...options, confirmK: 2, confirmN: 3 });
  assert.deepEqual(play(t, [win(0, [[1, 9]]), win(1), win(2), win(3)]), [], "a lone blip");
  assert.equal(t.has("s"), false, "a blip that slid out is forgotten");
  assert.deepEqual(t.observe(win(4, [[1, 9]])), []);
  const [opened] = t.observe(win(6, [[2, 9]]));
  assert.equal(opened.event, "opened");
  assert.equal(opened.startedAt, win(4).timestamp);
  assert.equal(opened.sensorCount, 2, "the sensors of the confirming windows");
});

test("incidentTracker opens with the sensors of the hits in its ring, not of sporadic hits before", () => {
  const t = new IncidentTracker({ ...options, confirmK: 2, confirmN: 3 });
  // Hits a ring apart (each alone in its ring), then two close ones: only theirs open it.
  const windows = [win(0, [[7, 5]]), win(1), win(2), win(3, [[8, 5]]), win(4), win(5)];
  windows.push(win(6, [[9, 5]]), win(7), win(8), win(9, [[3, 6]]));
  assert.deepEqual(play(t, windows), []);
  const [opened] = t.observe(win(10, [[3, 7]]));
  assert.equal(opened.event, "opened");
  assert.equal(opened.startedAt, win(9).timestamp);
  assert.deepEqual(
    opened.sensors.map((s) => s.feature_idx),
    [3],
  );
  assert.equal(opened.sensorCount, 1);
});

test("incidentTracker starts afresh after a resolution, though it resolves in fewer windows than it confirms", () => {
  const t = new IncidentTracker({ ...options, confirmK: 2, confirmN: 5, quietWindows: 1 });
  const [first] = play(t, [win(0, [[7, 5]]), win(1, [[7, 5]])]);
  assert.equal(first.event, "opened");
  const [resolved] = t.observe(win(2));
  assert.equal(resolved.event, "resolved");
  // One new hit: the old incident's hits no longer count towards the next.
  assert.deepEqual(t.observe(win(3, [[8, 5]])), []);
  const [next] = t.observe(win(4, [[8, 6]]));
  assert.equal(next.event, "opened");
  assert.equal(next.startedAt, win(3).timestamp);
  assert.notEqual(next.incidentId, first.incidentId);
  assert.deepEqual(
    next.sensors.map((s) => s.feature_idx),
    [8],
  );
});

test("incidentTracker never loses a sensor: counts all, keeps bounded peak evidence", () => {
  const nFeatures = 5000;
  const t = new IncidentTracker({ ...options, nFeatures, maxFeatures: 10, updateMinMs: 0 });
  let last = 0;
  let peak = 0;
  for (let k = 0; k < 50; k++) {
    // 100 new sensors per window, evidence for the 10 most severe only.
    const flagged = Array.from({ length: 100 }, (_, i) => k * 100 + i);
    const evidence = flagged.slice(0, 10).map((f) => ev(f, (f % 997) / 10));
    for (const e of evidence) peak = Math.max(peak, e.severity);
    const events = t.observe({ streamId: "s", timestamp: k + 1, flagged, evidence });
    if (events.length) last = events.at(-1)!.sensorCount;
  }
  assert.equal(last, 5000);
  const snap = t.snapshot("s")!;
  assert.equal(snap.incident!.count, 5000);
  assert.equal(snap.incident!.peak.length, 10);
  assert.ok(JSON.stringify(snap).length < 10_000, "the snapshot stays small");
  const top = snap.incident!.peak.map((e) => e.severity);
  assert.deepEqual(
    top,
    [...top].sort((a, b) => b - a),
  );
  assert.equal(top[0], peak, "the most severe sensor of all windows");
});

test("incidentTracker derives the same ids from the same windows, per stream and model", () => {
  const windows = [win(0, [[1, 9]]), win(1), win(2), win(3)];
  const a = play(new IncidentTracker(options), windows);
  const b = play(new IncidentTracker(options), windows);
  assert.deepEqual(a, b);
  const other = play(new IncidentTracker({ ...options, modelVersion: "m@2" }), windows);
  assert.notEqual(other[0].incidentId, a[0].incidentId);
  const stream2 = play(
    new IncidentTracker(options),
    windows.map((w) => ({ ...w, streamId: "t" })),
  );
  assert.notEqual(stream2[0].incidentId, a[0].incidentId);
  assert.match(
    a[0].incidentId,
    /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
  );
});

test("incidentTracker ignores a replayed window and keeps streams apart", () => {
  const t = new IncidentTracker(options);
  t.observe(win(0, [[1, 9]], "a"));
  assert.deepEqual(t.observe(win(0, [[1, 9]], "a")), [], "the same window again");
  const [b] = t.observe(win(0, [[2, 9]], "b"));
  assert.equal(b.event, "opened");
  assert.equal(t.openIncidents, 2);
});

test("incidentTracker restores a snapshot and carries on the same incident", () => {
  const t = new IncidentTracker(options);
  const [opened] = play(t, [win(0, [[1, 9]]), win(1, [[2, 8]]), win(2)]);
  const snap = JSON.parse(JSON.stringify(t.snapshot("s")));
  const u = new IncidentTracker(options);
  u.restore("s", snap);
  assert.deepEqual(play(u, [win(3)]), [], "the quiet count survives");
  const [resolved] = u.observe(win(4));
  assert.equal(resolved.event, "resolved");
  assert.equal(resolved.incidentId, opened.incidentId);
  assert.equal(resolved.sensorCount, 2);
});

test("incidentTracker expires the incident of a silent stream at its last window", () => {
  const t = new IncidentTracker(options);
  t.observe(win(0, [[1, 9]]));
  t.observe(win(1));
  const [resolved] = t.expire("s");
  assert.equal(resolved.event, "resolved");
  assert.equal(resolved.reason, "stale");
  assert.equal(resolved.timestamp, win(1).timestamp);
  assert.equal(t.has("s"), false);
  assert.deepEqual(t.expire("s"), []);
});

test("incidentTracker rejects bad options naming the variable", () => {
  assert.throws(
    () => new IncidentTracker({ ...options, confirmK: 3, confirmN: 2 }),
    /INCIDENT_CONFIRM_K/,
  );
  assert.throws(
    () => new IncidentTracker({ ...options, quietWindows: 0 }),
    /INCIDENT_QUIET_WINDOWS/,
  );
  assert.throws(
    () => new IncidentTracker({ ...options, updateMinMs: -1 }),
    /INCIDENT_UPDATE_MIN_MS/,
  );
});

test("incidentTracker carries the kind classify sets into later events and its snapshot", () => {
  const t = new IncidentTracker(options);
  const [opened] = t.observe(win(0, [[3, 9]]));
  assert.equal(opened.kind, undefined, "decided after it opens, by the alert path");
  t.classify("s", "sensor");
  t.classify("quiet-stream", "process");
  assert.equal(t.has("quiet-stream"), false, "nothing is kept for a stream without incident");
  const [updated] = t.observe(
    win(20, [
      [3, 9],
      [4, 9],
      [5, 12],
    ]),
  );
  assert.equal(updated.event, "updated");
  assert.equal(updated.kind, "sensor");
  t.classify("s", "process");
  const restored = new IncidentTracker(options);
  restored.restore("s", JSON.parse(JSON.stringify(t.snapshot("s"))));
  const resolved = play(restored, [win(21), win(22), win(23)]);
  assert.equal(resolved.at(-1)?.event, "resolved");
  assert.equal(resolved.at(-1)?.kind, "process", "the revised kind survives a restart");
});

test("incidentTracker classify with an incident id leaves another incident of the stream alone", () => {
  const t = new IncidentTracker(options);
  const [opened] = t.observe(win(0, [[3, 9]]));
  t.classify("s", "sensor", opened.incidentId);
  t.classify("s", "process", "another-incident");
  const resolved = play(t, [win(1), win(2), win(3)]);
  assert.equal(resolved.at(-1)?.event, "resolved");
  assert.equal(resolved.at(-1)?.kind, "sensor");
});

test("incidentTracker opens with the sensors of the hits still in its ring, at k of n above 2", () => {
  const t = new IncidentTracker({ ...options, confirmK: 3, confirmN: 4 });
  // 42 and 43 leave the ring before 7, 8 and 9 confirm: two hits in it all along.
  const windows = [win(1, [[42, 30]]), win(2, [[43, 12]]), win(3), win(4)];
  windows.push(win(5, [[7, 12]]), win(6, [[8, 12]]));
  assert.deepEqual(play(t, windows), []);
  const [opened] = t.observe(win(7, [[9, 12]]));
  assert.equal(opened.event, "opened");
  assert.equal(opened.startedAt, win(5).timestamp);
  assert.deepEqual(
    opened.sensors.map((s) => s.feature_idx).sort((a, b) => a - b),
    [7, 8, 9],
  );
  assert.equal(opened.sensorCount, 3);
  assert.equal(opened.maxSeverity, 12, "not the severity of a hit that left the ring");
});

test("incidentTracker keeps each confirming hit's sensors across a restore", () => {
  const k3 = { ...options, confirmK: 3, confirmN: 4 };
  const t = new IncidentTracker(k3);
  assert.deepEqual(play(t, [win(1, [[42, 30]]), win(2), win(3, [[43, 12]])]), []);
  const snap = JSON.parse(JSON.stringify(t.snapshot("s")));
  assert.equal(snap.pending.maxSeverity, 30, "the union of the hits in the ring, as before");
  const u = new IncidentTracker(k3);
  u.restore("s", snap);
  // 42 leaves the ring with window 5; 43, 7 and 8 open the incident.
  assert.deepEqual(play(u, [win(4), win(5, [[7, 12]])]), []);
  const [opened] = u.observe(win(6, [[8, 12]]));
  assert.equal(opened.event, "opened");
  assert.equal(opened.startedAt, win(3).timestamp);
  assert.deepEqual(
    opened.sensors.map((s) => s.feature_idx).sort((a, b) => a - b),
    [7, 8, 43],
  );
  assert.equal(opened.maxSeverity, 12);
  assert.equal(new IncidentTracker({ ...k3, nFeatures: 43 }).fits(snap), false);
});

test("incidentTracker restores a confirming snapshot saved before hits were kept one by one", () => {
  // As an earlier release saved them: the confirming set as one union, no `hits`.
  const k2 = new IncidentTracker({ ...options, confirmK: 2, confirmN: 3 });
  k2.restore("s", {
    v: 1,
    last: 1002000,
    recent: [1001000, 0],
    pending: {
      bits: "AAAAAAAEAAAAAAAAAAAAAA==",
      peak: [{ feature_idx: 42, score: 1, severity: 30, statistic: 0, window: [0, 0, 0, 0, 30] }],
      maxSeverity: 30,
    },
  });
  const [opened] = k2.observe(win(3, [[43, 12]]));
  assert.equal(opened.event, "opened");
  assert.equal(opened.startedAt, win(1).timestamp);
  assert.deepEqual(
    opened.sensors.map((s) => s.feature_idx),
    [42, 43],
  );
  assert.equal(opened.maxSeverity, 30);

  const k3 = new IncidentTracker({ ...options, confirmK: 3, confirmN: 4 });
  k3.restore("s", {
    v: 1,
    last: 1003000,
    recent: [1001000, 1002000, 0],
    pending: {
      bits: "AAAAAAAMAAAAAAAAAAAAAA==",
      peak: [
        { feature_idx: 42, score: 1, severity: 30, statistic: 0, window: [0, 0, 0, 0, 30] },
        { feature_idx: 43, score: 1, severity: 12, statistic: 0, window: [0, 0, 0, 0, 12] },
      ],
      maxSeverity: 30,
    },
  });
  const [next] = k3.observe(win(4, [[7, 12]]));
  assert.equal(next.event, "opened");
  assert.equal(next.startedAt, win(1).timestamp);
  assert.equal(next.sensorCount, 3);
  assert.deepEqual(
    next.sensors.map((s) => s.feature_idx),
    [42, 7, 43],
  );
});
