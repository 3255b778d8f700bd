import assert from "node:assert/strict";
import { test } from "node:test";
import * as v from "valibot";
import {
  activateRequestSchema,
  activateResponseSchema,
  modelsResponseSchema,
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
