// One delivery attempt: what a failure stores never holds the webhook's URL (a Slack webhook's path is its secret).
import assert from "node:assert/strict";
import { test } from "node:test";
import { sendNotification } from "./send_notification.ts";

test("a failed attempt's error names no URL, password or path", async () => {
  // Real fetch: it refuses a URL with credentials, quoting the URL in its message.
  const secretPath = "/services/T000/B000/XXXXsecretXXXX";
  const result = await sendNotification({
    fetch: globalThis.fetch,
    url: `http://hook:s3cr3t-pass@127.0.0.1:9${secretPath}`,
    body: "{}",
    messageId: "msg_1",
    timeoutMs: 2000,
    now: Date.now(),
  });
  assert.equal(result.outcome, "retry");
  const error = (result as { error: string }).error;
  assert.match(error, /credentials: <webhook url>/);
  for (const secret of ["s3cr3t-pass", "XXXXsecretXXXX", "127.0.0.1"]) {
    assert.ok(!error.includes(secret), `${secret} in ${error}`);
  }
});
