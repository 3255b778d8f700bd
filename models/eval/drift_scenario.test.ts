import assert from "node:assert/strict";
import { test } from "node:test";
import { type DriftScenarioReport, driftScenarioText, runDriftScenario } from "./drift_scenario.ts";

// Small sizes, run once for every test: 10 sensors, the move at frame 600, a round every 1,000
// frames over the last 2,000 recorded ones, the verdict 300 frames after the move, 4,000 frames
// in all (about 2 s).
let running: Promise<DriftScenarioReport> | undefined;
const scenario = () =>
  (running ??= runDriftScenario({
    nFeatures: 10,
    frames: 900,
    eventsPerKind: 2,
    schedule: {
      normalFrames: 600,
      everyFrames: 1000,
      lookbackFrames: 2000,
      verdictAfter: 300,
      totalFrames: 4000,
    },
  }));

test("runDriftScenario floods the unretrained model after the move and one retraining takes it in", async () => {
  const r = await scenario();
  const row = (model: string, data: string) => {
    const found = r.rows.find((x) => x.model === model && x.data === data);
    assert.ok(found, `${model} on ${data}`);
    return found.metrics;
  };
  const before = row("original", "before the move").recent.falseAlarmFramesPer10k;
  const after = row("original, not retrained", "after the move").recent.falseAlarmFramesPer10k;
  const retrained = row("retrained once", "after the move").recent.falseAlarmFramesPer10k;
  assert.ok(after > 5000, `the moved plant floods the original model (${after} per 10k)`);
  assert.ok(retrained < after / 10, `one retraining takes the move in (${retrained} per 10k)`);
  assert.ok(before < after);
  assert.equal(r.retrainGate.decision, "promoted");
  // The original still flags the stuck sensor (its quiet statistic); the table says both.
  assert.ok(row("original", "sensor 9 stuck").recent.falseAlarmFramesPer10k > 5000);
  // A model that learnt the stuck sensor alarms once the sensor works again.
  assert.ok(
    row("trained on the stuck history", "sensor repaired").recent.falseAlarmFramesPer10k > 5000,
  );
  assert.match(driftScenarioText(r), /Gate on a retraining whose lookback holds sensor 9 stuck/);
});

test("runDriftScenario holds a retraining whose whole lookback holds a stuck sensor", async () => {
  const r = await scenario();
  assert.equal(r.stuckGate.decision, "held");
  assert.match(r.stuckGate.reasons.join(";"), /flatSensors: feature_9/);
});

test("scheduled retraining without a verdict never promotes: the move stays one incident the history leaves out", async () => {
  const r = await scenario();
  const v = r.scheduled.variants.find((x) => x.name === "no verdict");
  assert.ok(v);
  assert.equal(v.rounds.length, 3);
  assert.equal(v.firstPromotion, null);
  for (const round of v.rounds) {
    assert.notEqual(round.decision, "promoted", `round at ${round.frame}`);
    assert.equal(round.falsePositiveFrames, 0);
  }
  // Once the lookback holds only moved frames, nothing of it is usable.
  const last = v.rounds.at(-1);
  assert.equal(last?.usable, 0);
  assert.equal(last?.decision, "too little history");
  const moved = v.segments.find((s) => s.name === "moved, never promoted");
  assert.ok(moved);
  assert.ok(moved.inIncidentShare > 0.99, `moved frames in an incident: ${moved.inIncidentShare}`);
  assert.ok(moved.falseAlarmWindowsPer10k > 5000);
});

test("scheduled retraining with a false-positive verdict on the move promotes after the verdict and the moved plant calms down", async () => {
  const r = await scenario();
  const v = r.scheduled.variants.find((x) => x.name === "verdict");
  assert.ok(v?.firstPromotion, "a promotion");
  const move = 600;
  assert.ok(v.verdictIncident, "the verdict found the move's incident");
  assert.ok(v.firstPromotion.frame >= move + 300, `promoted at ${v.firstPromotion.frame}`);
  assert.equal(v.firstPromotion.afterMove, v.firstPromotion.frame - move);
  // Before the verdict no round may promote; the promoting round trained on judged frames.
  for (const round of v.rounds.filter((x) => x.frame < move + 300)) {
    assert.notEqual(round.decision, "promoted");
  }
  const promoting = v.rounds.find((x) => x.frame === v.firstPromotion?.frame);
  assert.ok(promoting && promoting.falsePositiveFrames > 0);
  const seg = (name: string) => {
    const found = v.segments.find((s) => s.name === name);
    assert.ok(found, name);
    return found;
  };
  const before = seg("moved, before the first promotion");
  const after = seg("moved, after the first promotion");
  assert.ok(
    after.falseAlarmWindowsPer10k < before.falseAlarmWindowsPer10k / 10,
    `false-alarm windows ${before.falseAlarmWindowsPer10k} -> ${after.falseAlarmWindowsPer10k}`,
  );
  assert.ok(
    after.falseIncidentsPer10k <= before.falseIncidentsPer10k,
    `false incidents ${before.falseIncidentsPer10k} -> ${after.falseIncidentsPer10k}`,
  );
  assert.ok(after.inIncidentShare < 0.5, `frames in an incident: ${after.inIncidentShare}`);
  assert.match(driftScenarioText(r), /First promoted version, verdict: \w+ at frame \d+/);
});
