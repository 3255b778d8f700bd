import assert from "node:assert/strict";
import { test } from "node:test";
import type { StreamSnapshot } from "../../scoring/incident_tracker.ts";
import { mergeSteps, type PersistStep } from "./_persist_step.ts";

const snap = (last: number): StreamSnapshot => ({ v: 1, last, recent: [last] });
const rec = (id: string) => ({ id, body: `{"alert_id":"${id}"}` });

test("mergeSteps keeps each stream's newest state with its alerts not yet submitted", () => {
  const a1 = rec("a1");
  const older: PersistStep = {
    changes: new Map([["a", { snapshot: snap(1), alerts: [a1] }]]),
    records: [{ streamId: "a", record: a1 }],
    tombstones: new Set(),
  };
  const a2 = rec("a2");
  const newer: PersistStep = {
    changes: new Map([
      ["a", { snapshot: snap(2), alerts: [a2] }],
      ["b", { snapshot: snap(2) }],
    ]),
    records: [{ streamId: "a", record: a2 }],
    tombstones: new Set(),
  };
  const merged = mergeSteps(older, newer);
  assert.deepEqual(merged.changes.get("a"), { snapshot: snap(2), alerts: [a1, a2] });
  assert.deepEqual(merged.changes.get("b"), { snapshot: snap(2) });
  assert.deepEqual(
    merged.records.map((r) => r.record.id),
    ["a1", "a2"],
  );
});

test("mergeSteps keeps a deleted stream's unsubmitted alerts until they are in the outbox", () => {
  const a1 = rec("a1");
  const older: PersistStep = {
    changes: new Map(),
    records: [{ streamId: "a", record: a1 }],
    tombstones: new Set(),
  };
  const newer: PersistStep = {
    changes: new Map([["a", undefined]]),
    records: [],
    tombstones: new Set(),
  };
  const merged = mergeSteps(older, newer);
  assert.deepEqual(merged.changes.get("a"), { alerts: [a1] });
  assert.deepEqual([...merged.tombstones], ["a"]);
});

test("mergeSteps lets a newer state replace an older step's pending delete", () => {
  const older: PersistStep = {
    changes: new Map(),
    records: [],
    tombstones: new Set(["a"]),
  };
  const newer: PersistStep = {
    changes: new Map([["a", { snapshot: snap(3) }]]),
    records: [],
    tombstones: new Set(),
  };
  const merged = mergeSteps(older, newer);
  assert.deepEqual([...merged.tombstones], []);
  assert.deepEqual(merged.changes.get("a"), { snapshot: snap(3) });
});
