import assert from "node:assert/strict";
import { test } from "node:test";
import { backoffDelay, isRetryableStatus, retryAfterMs } from "./retry_policy.ts";

test("retryPolicy retries 429, 408 and every 5xx but no other 4xx", () => {
  for (const status of [408, 429, 500, 502, 503, 504, 599])
    assert.equal(isRetryableStatus(status), true);
  for (const status of [400, 401, 403, 404, 409, 413, 422, 201, 301]) {
    assert.equal(isRetryableStatus(status), false, String(status));
  }
});

test("backoffDelay grows exponentially under a cap with full jitter", () => {
  assert.equal(
    backoffDelay(0, 100, 1000, () => 0.999),
    99,
  );
  assert.equal(
    backoffDelay(3, 100, 1000, () => 0.999),
    799,
  );
  assert.equal(
    backoffDelay(10, 100, 1000, () => 0.999),
    999,
  );
  assert.equal(
    backoffDelay(10, 100, 1000, () => 0),
    0,
  );
  assert.equal(
    backoffDelay(1000, 100, 1000, () => 0.5),
    500,
  );
});

test("retryAfterMs reads delta seconds and HTTP dates", () => {
  assert.equal(retryAfterMs(null), undefined);
  assert.equal(retryAfterMs("3"), 3000);
  const now = Date.UTC(2026, 10, 24, 9);
  assert.equal(retryAfterMs("Tue, 24 Nov 2026 09:00:02 GMT", now), 2000);
  assert.equal(retryAfterMs("Tue, 24 Nov 2026 08:00:00 GMT", now), 0);
  assert.equal(retryAfterMs("soon"), undefined);
});
