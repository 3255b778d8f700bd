import assert from "node:assert/strict";
import { test } from "node:test";
import { driftScenarioText, runDriftScenario } from "./drift_scenario.ts";

test("runDriftScenario floods the unretrained model after the move and one retraining takes it in", async () => {
  const r = await runDriftScenario({ nFeatures: 10, frames: 900, eventsPerKind: 2 });
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
