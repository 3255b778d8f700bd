import assert from "node:assert/strict";
import { after, test } from "node:test";
import { type ScriptedAnswer, startFrameSink } from "./_frame_sink.ts";
import { gzipText } from "./gzip.ts";
import { createFrameSender, type FailedAttempt } from "./send_frame.ts";

const sinks: { close(): Promise<void> }[] = [];
after(() => Promise.all(sinks.map((s) => s.close())));
async function sink(script: ScriptedAnswer[]) {
  const s = await startFrameSink(script);
  sinks.push(s);
  return s;
}

test("frame sender waits no longer than retryMaxMs whatever Retry-After asks", async () => {
  const s = await sink([{ status: 503, headers: { "retry-after": "60" } }]);
  const send = createFrameSender({ engineUrl: s.url, maxRetries: 1, retryMaxMs: 50 });
  const failed: FailedAttempt[] = [];
  // A sender that waited the 60 s asked for fails here instead.
  const answer = await send(await gzipText("{}"), AbortSignal.timeout(10_000), {
    onRetry: (f) => failed.push(f),
  });
  assert.deepEqual([answer.status, answer.attempts], [202, 2]);
  assert.deepEqual(
    failed.map((f) => [f.attempt, f.status, f.code]),
    [[1, 503, "http_503"]],
  );
  assert.ok(failed[0].waitMs <= 50, `waited ${failed[0].waitMs} ms`);
});

test("frame sender does not retry 503 too_many_streams, which no short wait changes", async () => {
  const refused = {
    status: 503,
    headers: { "retry-after": "60" },
    body: { error: "too_many_streams", message: "the engine keeps 2 streams (MAX_STREAMS)" },
  };
  const s = await sink([refused]);
  const send = createFrameSender({ engineUrl: s.url, maxRetries: 5 });
  const answer = await send(await gzipText("{}"), AbortSignal.timeout(10_000));
  assert.deepEqual([answer.status, answer.attempts], [503, 1]);
  assert.equal((answer.body as { error: string }).error, "too_many_streams");
  assert.equal(answer.headers["retry-after"], "60", "passed on to the caller");
  assert.equal(s.arrivals.length, 1);
});
