// The notification backoff: doubling, capped, jittered downward only, and never shorter than Retry-After.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { backoffMs, DEFAULT_RETRY_POLICY, RETRYABLE_STATUSES } from "./retry_policy.ts";

const policy = { attempts: 5, initialMs: 100, maxMs: 1000, jitter: 0.5 };

test("backoffMs doubles per failure up to the cap", () => {
  const waits = [1, 2, 3, 4, 5, 6].map((n) => backoffMs(policy, n, 0, () => 0));
  assert.deepEqual(waits, [100, 200, 400, 800, 1000, 1000]);
});

test("backoffMs takes off at most the jitter share", () => {
  assert.equal(
    backoffMs(policy, 3, 0, () => 1),
    200,
  );
  assert.equal(
    backoffMs(policy, 3, 0, () => 0.5),
    300,
  );
});

test("backoffMs waits at least Retry-After, but never past the cap", () => {
  assert.equal(
    backoffMs(policy, 1, 700, () => 0),
    700,
  );
  assert.equal(
    backoffMs(policy, 1, 60_000, () => 0),
    1000,
  );
});

test("the default policy retries rate limits and server failures, not other client errors", () => {
  for (const status of [408, 429, 500, 502, 503, 504]) assert.ok(RETRYABLE_STATUSES.has(status));
  for (const status of [400, 401, 403, 404, 410, 422]) assert.ok(!RETRYABLE_STATUSES.has(status));
  assert.ok(DEFAULT_RETRY_POLICY.attempts > 1);
});

test("the default policy gives up 58 to 72 minutes after the first try, as README.md says", async () => {
  const p = DEFAULT_RETRY_POLICY;
  const span = (random: () => number) => {
    let ms = 0;
    for (let failures = 1; failures < p.attempts; failures++)
      ms += backoffMs(p, failures, 0, random);
    return Math.floor(ms / 60_000);
  };
  // The most jitter takes off, and none.
  const [shortest, longest] = [span(() => 1), span(() => 0)];
  assert.deepEqual([shortest, longest], [58, 72]);
  const readme = await readFile(new URL("./README.md", import.meta.url), "utf8");
  assert.ok(readme.includes(`${shortest} to ${longest} minutes`), "README.md states the span");
});
