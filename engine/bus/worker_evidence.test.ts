import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { IncidentEvent } from "../../scoring/incident_tracker.ts";
import type { ServedVersion } from "./served_versions.ts";
import { WorkerEvidence } from "./worker_evidence.ts";

const T0 = Date.UTC(2026, 10, 24, 9);
const config = {
  EVIDENCE_HISTORY_FRAMES: 10,
  EVIDENCE_HISTORY_MAX_MB: 1,
  EVIDENCE_ALERT_MAX_BYTES: 64 * 1024,
};

/** The `opened` of an incident on sensor 0 of stream `s` at the third frame. */
const opened: IncidentEvent = {
  event: "opened",
  incidentId: "7c1f3d8e-5a2b-5c4d-8e9f-0a1b2c3d4e5f",
  streamId: "s",
  startedAt: T0 + 2000,
  timestamp: T0 + 2000,
  sensorCount: 1,
  sensors: [{ feature_idx: 0, score: 1, severity: 9, statistic: -1, window: [1, 2] }],
  maxSeverity: 9,
};

test("workerEvidence starts the history afresh at a version whose sensors are the same ones in another order", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "worker-evidence-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  // A graph without a cross-sensor stage: the context names no related sensors.
  const onnxPath = join(dir, "m.onnx");
  await writeFile(onnxPath, new Uint8Array());
  const served = (version: string, names: string[]) =>
    ({
      version,
      onnxPath,
      meta: { n_features: names.length, feature_names: names, window_size: 2 },
    }) as unknown as ServedVersion;
  const context = new WorkerEvidence(config, 1);
  context.for("m", served("1", ["a", "b"]));
  for (let i = 0; i < 3; i++) context.record("m", "s", T0 + i * 1000, Float32Array.of(i, 10 * i));
  const history = (version: string, names: string[]) =>
    context.for("m", served(version, names)).build(opened).sensors.get(0)?.history?.values;
  assert.deepEqual(history("2", ["a", "b"]), [0, 1, 2], "the same sensors go on with it");
  assert.equal(history("3", ["b", "a"]), undefined, "column 0 is now b: a's readings are not its");
});

test("workerEvidence reports its models' history budget together", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "worker-evidence-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const onnxPath = join(dir, "m.onnx");
  await writeFile(onnxPath, new Uint8Array());
  const served = {
    version: "1",
    onnxPath,
    meta: { n_features: 2, feature_names: ["a", "b"], window_size: 2 },
  };
  const context = new WorkerEvidence(config, 2);
  context.for("m", served as unknown as ServedVersion);
  context.for("n", served as unknown as ServedVersion);
  context.record("m", "s", T0, Float32Array.of(1, 2));
  context.record("n", "s", T0, Float32Array.of(1, 2));
  context.record("n", "r", T0, Float32Array.of(1, 2));
  const report = context.report();
  assert.equal(report.streams, 3);
  assert.equal(report.ringless, 0);
  assert.equal(report.bytes, 3 * 10 * (2 * 4 + 8));
});
