import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { test } from "node:test";
import { HttpError } from "./error.ts";
import { signWebhook, verifyWebhook } from "./webhook_signature.ts";

const rawSecret = "a-raw-secret-of-some-length";
const keyBytes = Buffer.from("0123456789abcdef0123456789abcdef");
const whsecSecret = `whsec_${keyBytes.toString("base64")}`;
const id = "0b6d4a52-2c4e-4d9a-9a51-3f0b0a3a1c11";
const timestamp = 1_790_000_000;
const body = '{"timestamp":"2026-11-24T09:00:00.000Z","anomaly_detected":true}';

/** The expected signature, computed independently with node:crypto. */
const reference = (key: Buffer | string) =>
  `v1,${createHmac("sha256", key).update(`${id}.${timestamp}.${body}`).digest("base64")}`;

const headersOf = (h: Record<string, string>) => new Headers(h);

async function rejection(promise: Promise<unknown>): Promise<HttpError> {
  const error = await promise.then(
    () => assert.fail("expected a rejection"),
    (e: unknown) => e,
  );
  assert.ok(error instanceof HttpError, String(error));
  assert.equal(error.status, 401);
  assert.equal(error.code, "invalid_signature");
  return error;
}

test("signWebhook matches an HMAC-SHA256 computed with node:crypto for a raw secret", async () => {
  const headers = await signWebhook({ secret: rawSecret, id, timestamp, body });
  assert.deepEqual(headers, {
    "webhook-id": id,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": reference(rawSecret),
  });
});

test("signWebhook uses the base64-decoded bytes of a whsec_ secret as the key", async () => {
  const headers = await signWebhook({ secret: whsecSecret, id, timestamp, body });
  assert.equal(headers["webhook-signature"], reference(keyBytes));
});

test("signWebhook matches the Standard Webhooks reference vector", async () => {
  // From the Standard Webhooks specification's example.
  const headers = await signWebhook({
    secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
    timestamp: 1614265330,
    body: '{"test": 2432232314}',
  });
  assert.equal(headers["webhook-signature"], "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
});

test("verifyWebhook accepts what signWebhook produced", async () => {
  for (const secret of [rawSecret, whsecSecret]) {
    const headers = await signWebhook({ secret, id, timestamp, body });
    await verifyWebhook({ secret, headers: headersOf({ ...headers }), body, now: timestamp + 10 });
  }
});

test("verifyWebhook accepts any one valid signature among several", async () => {
  const headers = await signWebhook({ secret: rawSecret, id, timestamp, body });
  const listed = `v1,bm90LWl0 v2,whatever ${headers["webhook-signature"]} v1,!!notbase64`;
  await verifyWebhook({
    secret: rawSecret,
    headers: headersOf({ ...headers, "webhook-signature": listed }),
    body,
    now: timestamp,
  });
});

test("verifyWebhook rejects missing headers", async () => {
  const headers = await signWebhook({ secret: rawSecret, id, timestamp, body });
  for (const name of ["webhook-id", "webhook-timestamp", "webhook-signature"] as const) {
    const partial: Record<string, string> = { ...headers };
    delete partial[name];
    const error = await rejection(
      verifyWebhook({ secret: rawSecret, headers: headersOf(partial), body, now: timestamp }),
    );
    assert.match(error.message, /required/);
  }
});

test("verifyWebhook rejects a changed body, id, timestamp or secret", async () => {
  const headers = await signWebhook({ secret: rawSecret, id, timestamp, body });
  const cases = [
    { secret: rawSecret, headers, body: `${body} ` },
    { secret: rawSecret, headers: { ...headers, "webhook-id": `${id}x` }, body },
    {
      secret: rawSecret,
      headers: { ...headers, "webhook-timestamp": String(timestamp + 1) },
      body,
    },
    { secret: `${rawSecret}x`, headers, body },
  ];
  for (const c of cases) {
    await rejection(
      verifyWebhook({
        secret: c.secret,
        headers: headersOf(c.headers),
        body: c.body,
        now: timestamp,
      }),
    );
  }
});

test("verifyWebhook rejects a truncated or garbled signature", async () => {
  const headers = await signWebhook({ secret: rawSecret, id, timestamp, body });
  const sig = headers["webhook-signature"];
  for (const bad of [sig.slice(0, -4), `v1,${"A".repeat(44)}`, sig.replace("v1,", "v2,"), "v1,"]) {
    await rejection(
      verifyWebhook({
        secret: rawSecret,
        headers: headersOf({ ...headers, "webhook-signature": bad }),
        body,
        now: timestamp,
      }),
    );
  }
});

test("verifyWebhook rejects timestamps outside the tolerance either way", async () => {
  const headers = await signWebhook({ secret: rawSecret, id, timestamp, body });
  const h = headersOf({ ...headers });
  await verifyWebhook({ secret: rawSecret, headers: h, body, now: timestamp + 300 });
  for (const now of [timestamp + 301, timestamp - 301]) {
    const error = await rejection(verifyWebhook({ secret: rawSecret, headers: h, body, now }));
    assert.match(error.message, /300 s/);
  }
  await rejection(
    verifyWebhook({
      secret: rawSecret,
      headers: headersOf({ ...headers, "webhook-timestamp": "soon" }),
      body,
      now: timestamp,
    }),
  );
});

test("signWebhook rejects a non-integer timestamp and an empty secret", async () => {
  await assert.rejects(signWebhook({ secret: rawSecret, id, timestamp: 1.5, body }), RangeError);
  await assert.rejects(signWebhook({ secret: "", id, timestamp, body }), /'secret'/);
});
