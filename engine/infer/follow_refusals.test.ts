import assert from "node:assert/strict";
import { test } from "node:test";
import { HttpError } from "../../contracts/error.ts";
import {
  definitiveRefusal,
  FOLLOW_RETRY_FIRST_MS,
  FOLLOW_RETRY_MAX_MS,
  FollowRefusals,
} from "./follow_refusals.ts";
import { RegistryError } from "./registry.ts";

test("a definitive answer refuses a version for good; any other failure is tried again later", () => {
  let now = 0;
  const refusals = new FollowRefusals(() => now);
  assert.equal(
    refusals.failed("m@2", new RegistryError("registry_entry_invalid", "bad")),
    undefined,
  );
  now += 10 * FOLLOW_RETRY_MAX_MS;
  assert.equal(refusals.skip("m@2"), true, "refused for good");

  assert.equal(refusals.failed("m@3", new Error("TIMEOUT")), FOLLOW_RETRY_FIRST_MS);
  assert.equal(refusals.skip("m@3"), true, "not due yet");
  now += FOLLOW_RETRY_FIRST_MS;
  assert.equal(refusals.skip("m@3"), false, "due again");
  assert.equal(refusals.failed("m@3", new Error("TIMEOUT")), 2 * FOLLOW_RETRY_FIRST_MS);
  for (let i = 0; i < 20; i++) refusals.failed("m@3", new Error("TIMEOUT"));
  assert.equal(refusals.failed("m@3", new Error("TIMEOUT")), FOLLOW_RETRY_MAX_MS, "capped");
  refusals.succeeded("m@3");
  assert.equal(refusals.skip("m@3"), false);
  assert.equal(refusals.failed("m@3", new Error("again")), FOLLOW_RETRY_FIRST_MS, "afresh");
});

test("which answers are definitive", () => {
  assert.equal(definitiveRefusal(new HttpError(409, "model_incompatible", "x")), true);
  assert.equal(definitiveRefusal(new RegistryError("version_not_found", "x")), true);
  assert.equal(definitiveRefusal(new HttpError(409, "activation_in_progress", "x")), false);
  assert.equal(definitiveRefusal(new HttpError(422, "model_load_failed", "x")), false);
  assert.equal(definitiveRefusal(new Error("TIMEOUT")), false);
  assert.equal(definitiveRefusal(undefined), false);
});
