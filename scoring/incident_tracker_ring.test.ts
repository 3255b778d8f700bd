// The tracker against a plain reference of its rules, on random streams, restarts included.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  deterministicUuid,
  type IncidentEvent,
  IncidentTracker,
  type IncidentTrackerOptions,
  type ObservedWindow,
  type SensorEvidence,
} from "./incident_tracker.ts";

const bySeverity = (a: SensorEvidence, b: SensorEvidence) =>
  b.severity - a.severity || b.score - a.score || a.feature_idx - b.feature_idx;

interface RefIncident {
  id: string;
  startedAt: number;
  sensors: Set<number>;
  peak: Map<number, SensorEvidence>;
  maxSeverity: number;
  quiet: number;
  emittedCount: number;
  emittedSeverity: number;
  emittedAt: number;
}

/**
 * The rules kept plainly: every window of the ring and every peak kept, nothing pruned. With
 * `clearWhenAlone` the confirming set is the one an earlier release kept (cleared only when a
 * hit is alone in the ring), the same as the ring's hits while k is at most 2.
 */
class Reference {
  #ring: ObservedWindow[] = [];
  #confirming: ObservedWindow[] = [];
  #incident: RefIncident | undefined;
  readonly o: IncidentTrackerOptions;
  readonly clearWhenAlone: boolean;

  constructor(o: IncidentTrackerOptions, clearWhenAlone = false) {
    this.o = o;
    this.clearWhenAlone = clearWhenAlone;
  }

  observe(w: ObservedWindow): IncidentEvent[] {
    const anomalous = w.flagged.length > 0;
    this.#ring.push(w);
    if (this.#ring.length > this.o.confirmN) this.#ring.shift();
    const inc = this.#incident;
    if (inc) {
      if (anomalous) {
        inc.quiet = 0;
        this.#merge(inc, w);
        const joined = inc.sensors.size > inc.emittedCount;
        const rose = inc.maxSeverity >= inc.emittedSeverity + this.o.updateSeverityRise;
        if ((joined || rose) && w.timestamp - inc.emittedAt >= this.o.updateMinMs) {
          return [this.#emit(inc, "updated", w.timestamp)];
        }
      } else if (++inc.quiet >= this.o.quietWindows) {
        const resolved = { ...this.#emit(inc, "resolved", w.timestamp), reason: "quiet" as const };
        this.#incident = undefined;
        this.#ring = [];
        return [resolved];
      }
      return [];
    }
    if (!anomalous) return [];
    const hits = this.#ring.filter((x) => x.flagged.length > 0);
    if (hits.length === 1) this.#confirming = [];
    this.#confirming.push(w);
    if (hits.length < this.o.confirmK) return [];
    const startedAt = hits[0].timestamp;
    const opened: RefIncident = {
      id: deterministicUuid("incident", w.streamId, startedAt, this.o.modelVersion),
      startedAt,
      sensors: new Set(),
      peak: new Map(),
      maxSeverity: 0,
      quiet: 0,
      emittedCount: 0,
      emittedSeverity: 0,
      emittedAt: w.timestamp,
    };
    for (const h of this.clearWhenAlone ? this.#confirming : hits) this.#merge(opened, h);
    this.#confirming = [];
    this.#incident = opened;
    return [this.#emit(opened, "opened", w.timestamp)];
  }

  #merge(inc: RefIncident, w: ObservedWindow) {
    for (const f of Array.from(w.flagged)) inc.sensors.add(f);
    for (const e of w.evidence) {
      const had = inc.peak.get(e.feature_idx);
      if (!had || bySeverity(e, had) < 0) inc.peak.set(e.feature_idx, e);
      if (e.severity > inc.maxSeverity) inc.maxSeverity = e.severity;
    }
  }

  #emit(inc: RefIncident, event: IncidentEvent["event"], timestamp: number): IncidentEvent {
    inc.emittedCount = inc.sensors.size;
    inc.emittedSeverity = inc.maxSeverity;
    inc.emittedAt = timestamp;
    return {
      event,
      incidentId: inc.id,
      streamId: "s",
      startedAt: inc.startedAt,
      timestamp,
      sensorCount: inc.sensors.size,
      sensors: [...inc.peak.values()].sort(bySeverity).slice(0, this.o.maxFeatures),
      maxSeverity: inc.maxSeverity,
    };
  }
}

function lcg(seed: number) {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return ((x >>> 8) & 0xffffff) / 0x1000000;
  };
}

/** Random streams through the tracker (restarted from its snapshot now and then) and `refs`. */
function compare(
  seed: number,
  trials: number,
  configure: (rnd: () => number) => Pick<IncidentTrackerOptions, "confirmK" | "confirmN">,
  refs: (o: IncidentTrackerOptions) => Reference[],
) {
  const rnd = lcg(seed);
  let opened = 0;
  for (let trial = 0; trial < trials; trial++) {
    // Sensors of 12 flag (often the same ones); some models have more, so that a window flagging
    // a few of them is kept as indices and one flagging many as a bitset.
    const F = 12;
    const o: IncidentTrackerOptions = {
      nFeatures: rnd() < 0.5 ? F : 300,
      modelVersion: "m@1",
      ...configure(rnd),
      quietWindows: 1 + Math.floor(rnd() * 4),
      updateMinMs: Math.floor(rnd() * 3) * 1000,
      updateSeverityRise: Math.floor(rnd() * 3),
      maxFeatures: 1 + Math.floor(rnd() * 5),
    };
    let tracker = new IncidentTracker(o);
    const references = refs(o);
    const p = rnd() * 0.7;
    let timestamp = 1_000_000;
    const seen: string[] = [];
    for (let i = 0; i < 60; i++) {
      timestamp += 1000 * (1 + Math.floor(rnd() * 2));
      const flagged = new Set<number>();
      if (rnd() < p) {
        const n = rnd() < 0.1 ? 20 : 1 + Math.floor(rnd() * 3);
        for (let j = 0; j < n; j++) flagged.add(Math.floor(rnd() * F));
      }
      const evidence = [...flagged]
        .map((f) => ({
          feature_idx: f,
          score: Math.floor(rnd() * 3) / 2,
          severity: Math.floor(rnd() * 10),
          statistic: -1,
          window: [f],
        }))
        .sort(bySeverity)
        .slice(0, o.maxFeatures);
      const w: ObservedWindow = { streamId: "s", timestamp, flagged: [...flagged], evidence };
      seen.push(`${timestamp}:${evidence.map((e) => `${e.feature_idx}@${e.severity}`).join(",")}`);
      const got = tracker.observe(w);
      opened += got.filter((e) => e.event === "opened").length;
      for (const ref of references) {
        assert.deepEqual(
          got,
          ref.observe(w),
          `trial ${trial} ${JSON.stringify(o)} ${ref.clearWhenAlone ? "(earlier rule) " : ""}windows ${seen.slice(-8).join(" | ")}`,
        );
      }
      if (rnd() < 0.1) {
        const snap = tracker.snapshot("s");
        tracker = new IncidentTracker(o);
        if (snap) tracker.restore("s", JSON.parse(JSON.stringify(snap)));
      }
    }
  }
  return opened;
}

test("incidentTracker at k of n up to 6 of 6 opens, updates and resolves as the plain rules say", () => {
  const opened = compare(
    11,
    600,
    (rnd) => {
      const confirmN = 1 + Math.floor(rnd() * 6);
      return { confirmN, confirmK: 1 + Math.floor(rnd() * confirmN) };
    },
    (o) => [new Reference(o)],
  );
  assert.ok(opened > 1000, `incidents opened: ${opened}`);
});

test("incidentTracker at 2 of 3 (the defaults) keeps the confirming set of the earlier rule", () => {
  const opened = compare(
    23,
    600,
    () => ({ confirmK: 2, confirmN: 3 }),
    (o) => [new Reference(o), new Reference(o, true)],
  );
  assert.ok(opened > 1000, `incidents opened: ${opened}`);
});
