// The RETENTION_* variables: defaults, fractions, and the two horizons checked against each other.
import assert from "node:assert/strict";
import { test } from "node:test";
import { backendConfigSchema, ConfigError, parseConfig } from "../../contracts/config.ts";
import { retentionSettings } from "./retention_settings.ts";

const settings = (env: Record<string, string>) =>
  retentionSettings(parseConfig(backendConfigSchema, env));

test("retentionSettings keeps alerts 30 days and incidents a year by default, pruning every 5 min", () => {
  assert.deepEqual(settings({}), {
    alertsDays: 30,
    incidentsDays: 365,
    everyMs: 300_000,
    batchSize: 200,
    enabled: true,
  });
});

test("retentionSettings takes fractions of a day, and 0 as forever", () => {
  assert.deepEqual(
    settings({
      RETENTION_ALERTS_DAYS: "0.001",
      RETENTION_INCIDENTS_DAYS: "0.002",
      RETENTION_EVERY_S: "2.5",
      RETENTION_BATCH: "50",
    }),
    { alertsDays: 0.001, incidentsDays: 0.002, everyMs: 2500, batchSize: 50, enabled: true },
  );
  assert.equal(
    settings({ RETENTION_ALERTS_DAYS: "30", RETENTION_INCIDENTS_DAYS: "0" }).enabled,
    true,
  );
  assert.equal(
    settings({ RETENTION_ALERTS_DAYS: "0", RETENTION_INCIDENTS_DAYS: "0" }).enabled,
    false,
  );
});

test("retentionSettings refuses an incident horizon shorter than the alerts' with a ConfigError naming both", () => {
  assert.throws(
    () => settings({ RETENTION_ALERTS_DAYS: "400" }),
    (error: Error) =>
      error instanceof ConfigError &&
      /'RETENTION_INCIDENTS_DAYS' must be 0 \(forever\) or at least 'RETENTION_ALERTS_DAYS' \(400\), got 365/.test(
        error.message,
      ),
  );
  assert.throws(
    () => settings({ RETENTION_ALERTS_DAYS: "0", RETENTION_INCIDENTS_DAYS: "400" }),
    /at least 'RETENTION_ALERTS_DAYS' \(0, forever\), got 400/,
  );
});

test("the RETENTION_* variables refuse what is not a number in range, by name", () => {
  assert.throws(
    () => settings({ RETENTION_ALERTS_DAYS: "-1" }),
    /'RETENTION_ALERTS_DAYS' must be a number 0..36500, got "-1"/,
  );
  assert.throws(
    () => settings({ RETENTION_EVERY_S: "0" }),
    /'RETENTION_EVERY_S' must be a number 1..86400/,
  );
  assert.throws(
    () => settings({ RETENTION_BATCH: "1.5" }),
    /'RETENTION_BATCH' must be an integer 1..10000/,
  );
});
