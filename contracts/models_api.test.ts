import assert from "node:assert/strict";
import { test } from "node:test";
import * as v from "valibot";
import {
  activateRequestSchema,
  activateResponseSchema,
  modelsResponseSchema,
  retrainReportSchema,
  retrainRequestSchema,
  retrainResponseSchema,
} from "./models_api.ts";

test("activate request takes a safe version and refuses anything else", () => {
  const ok = v.safeParse(activateRequestSchema, {
    version: "2.2.0+9fa2419cba78",
    reset_windows: true,
    by: "ops@plant",
    reason: "rollback",
  });
  assert.equal(ok.success, true);
  for (const version of ["../x", "a/b", "", ".hidden", "a..b", "x".repeat(129)]) {
    assert.equal(v.safeParse(activateRequestSchema, { version }).success, false, version);
  }
  assert.equal(v.safeParse(activateRequestSchema, { version: "1", extra: true }).success, false);
  assert.equal(v.safeParse(activateRequestSchema, { version: "1", by: "" }).success, false);
});

test("models listing and activation answer have the documented shape", () => {
  const activation = {
    name: "boiler",
    version: "1.1.0",
    from: "1.0.0",
    by: "ops",
    at: "2026-12-04T10:00:00.000Z",
    reason: "retrained",
  };
  const listing = {
    models: [
      {
        name: "boiler",
        layout: "registry",
        active_version: "1.1.0",
        versions: ["1.0.0", "1.1.0"],
        n_features: 12,
        window_size: 5,
        routes: ["*"],
        live_streams: 3,
        activation,
      },
    ],
  };
  assert.equal(v.safeParse(modelsResponseSchema, listing).success, true);
  const answer = {
    status: "active",
    model: "boiler",
    version: "1.1.0",
    from: "1.0.0",
    activation,
    windows_reset: false,
    streams: 3,
  };
  assert.equal(v.safeParse(activateResponseSchema, answer).success, true);
  assert.equal(
    v.safeParse(activateResponseSchema, { ...answer, status: "pending" }).success,
    false,
  );
});

test("retrain request is optional fields only, and its answer carries the run with who asked", () => {
  for (const ok of [{}, { by: "ana" }, { by: "ana", reason: "operating point moved" }]) {
    assert.equal(v.safeParse(retrainRequestSchema, ok).success, true, JSON.stringify(ok));
  }
  for (const bad of [{ by: "" }, { reason: 1 }, { version: "1" }, { by: "x".repeat(201) }, []]) {
    assert.equal(v.safeParse(retrainRequestSchema, bad).success, false, JSON.stringify(bad));
  }
  const at = "2026-12-04T10:00:00.000Z";
  const answer = {
    status: "started",
    model: "boiler",
    run: {
      started_at: at,
      finished_at: null,
      outcome: "running",
      reasons: [],
      requested: { by: "ana", reason: "", at },
    },
  };
  assert.equal(v.safeParse(retrainResponseSchema, answer).success, true);
  assert.equal(
    v.safeParse(retrainResponseSchema, {
      ...answer,
      run: { ...answer.run, requested: { by: "ana" } },
    }).success,
    false,
  );
  // No schedule: every_h 0, next_at null.
  const listing = modelsResponseSchema;
  assert.equal(
    v.safeParse(listing, {
      models: [
        {
          name: "boiler",
          layout: "registry",
          active_version: "1",
          versions: ["1"],
          n_features: 3,
          window_size: 5,
          routes: ["*"],
          live_streams: 0,
          retrain: { every_h: 0, next_at: null, last: answer.run },
        },
      ],
    }).success,
    true,
  );
});

test("retrain report schema keeps what it does not list, takes an older report, and refuses a broken one", () => {
  const metrics = {
    version: "1",
    recent: {
      windows: 10,
      alarmWindows: 1,
      incidents: 0,
      falseAlarmFramesPer10k: 1000,
      falseIncidentsPer10k: 0,
    },
    confirmed: { incidents: 0, detected: 0, recall: null },
    injected: { spike: { events: 4, detected: 3, recall: 0.75, found: [0, 1, 3] } },
  };
  const stretch = {
    frames: 5,
    runs: 1,
    from: "2026-12-04T10:00:00.000Z",
    to: "2026-12-04T10:01:00.000Z",
  };
  // As a retraining written before stuck frames were cut and injected events left out.
  const older = {
    model: "boiler",
    candidate_version: "2",
    active_version: "1",
    decision: "held",
    reasons: ["falseAlarmFramesPer10k: 1000 > 900"],
    promote: "manual",
    activated: null,
    decided_at: "2026-12-04T10:02:00.000Z",
    criteria: [
      { name: "falseAlarmFramesPer10k", active: 800, candidate: 1000, limit: 900, pass: false },
    ],
    tolerances: { injectedRecall: 0.05 },
    models: { active: metrics, candidate: { ...metrics, version: "2" } },
    data: {
      frames_read: 10,
      time_range: { from: null, to: null },
      usable_frames: 10,
      false_positive_frames_used: 0,
      excluded_read: {},
      excluded_before_recording: { silenced: 2 },
      training: stretch,
      recent: stretch,
      confirmed_incidents: [],
      injected: { per_kind: 4, seed: 1, events: 4 },
    },
  };
  const parsed = v.safeParse(retrainReportSchema, older);
  assert.equal(parsed.success, true);
  assert.deepEqual(parsed.output, older, "extra fields kept");
  for (const broken of [
    { ...older, decision: "maybe" },
    { ...older, criteria: [{ name: "x", active: "1", candidate: null, limit: null, pass: true }] },
    { ...older, data: { ...older.data, frames_read: -1 } },
    { ...older, models: { active: metrics } },
  ]) {
    assert.equal(
      v.safeParse(retrainReportSchema, broken).success,
      false,
      JSON.stringify(broken).slice(0, 80),
    );
  }
});
