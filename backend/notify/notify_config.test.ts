// The routes file: the sample parses, defaults apply, and every bad file is refused naming route and field.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { loadNotifyConfig, NotifyConfigError, parseNotifyConfig } from "./notify_config.ts";

const refused = (file: unknown, message: RegExp, env: Record<string, string> = {}) =>
  assert.throws(
    () => parseNotifyConfig(typeof file === "string" ? file : JSON.stringify(file), env),
    (error: Error) => error instanceof NotifyConfigError && message.test(error.message),
  );

test("parseNotifyConfig reads the sample file with its secret from the environment", async () => {
  const text = await readFile(new URL("./notify.example.json", import.meta.url), "utf8");
  const config = parseNotifyConfig(text, {
    NOTIFY_OPS_SECRET: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
  });
  assert.equal(config.consoleUrl, "https://anomaly.plant.example");
  const [ops, instruments, controlRoom] = config.routes;
  // Lines gone dark, running-condition sensors in doubt, the engine out of reach: no incidents.
  assert.deepEqual(controlRoom.match, { kind: "feed" });
  assert.deepEqual(ops.match, { stream: "line-*", min_severity: 6, kind: "process" });
  assert.equal(ops.webhook.secret, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  assert.equal(ops.webhook.format, "json");
  assert.equal(ops.repeatEveryMs, 4 * 3_600_000);
  assert.equal(ops.maxAgeMs, 12 * 3_600_000);
  assert.equal(instruments.webhook.format, "slack");
  assert.equal(instruments.webhook.timeoutMs, 5000);
  assert.deepEqual(instruments.retry, {
    attempts: 6,
    initialMs: 30_000,
    maxMs: 900_000,
    jitter: 0.2,
  });
  assert.equal(instruments.repeatEveryMs, undefined);
  assert.equal(instruments.maxAgeMs, 24 * 3_600_000);
});

test("parseNotifyConfig treats absent match fields as any and defaults the rest", () => {
  const [route] = parseNotifyConfig(
    '{"routes": [{"name": "all", "webhook": {"url": "http://h"}}]}',
  ).routes;
  assert.deepEqual(route.match, {});
  assert.equal(route.webhook.format, "json");
  assert.equal(route.webhook.timeoutMs, 10_000);
  assert.equal(route.retry.attempts, 10);
  assert.equal(route.concurrency, 4);
});

test("parseNotifyConfig reads max_age, 24h when absent, and refuses one under a minute naming the route", () => {
  const url = "https://hooks.example";
  const [history, pager] = parseNotifyConfig(
    JSON.stringify({
      routes: [
        { name: "history", webhook: { url }, max_age: "30d" },
        { name: "pager", webhook: { url } },
      ],
    }),
  ).routes;
  assert.equal(history.maxAgeMs, 30 * 86_400_000);
  assert.equal(pager.maxAgeMs, 24 * 3_600_000);
  refused(
    { routes: [{ name: "ops", webhook: { url }, max_age: "30s" }] },
    /^route "ops" \(routes\[0\]\): 'max_age' must be at least 1m$/,
  );
  refused(
    { routes: [{ name: "ops", webhook: { url }, max_age: "a day" }] },
    /^route "ops" \(routes\[0\]\): 'max_age' must be a duration such as "500ms"/,
  );
  refused(
    { routes: [{ name: "ops", webhook: { url }, max_age: 3600 }] },
    /^route "ops" \(routes\[0\]\): 'max_age' must be string, got 3600$/,
  );
});

test("parseNotifyConfig refuses a bad file naming the route and the field", () => {
  const url = "https://hooks.example";
  refused("{routes: []}", /^not JSON/);
  refused({}, /'routes' is required/);
  refused(
    { routes: [{ webhook: { url } }] },
    /route \(no name\) \(routes\[0\]\): 'name' is required/,
  );
  refused(
    { routes: [{ name: "ops", match: { min_severity: -1 }, webhook: { url } }] },
    /route "ops" \(routes\[0\]\): 'match\.min_severity'/,
  );
  refused(
    { routes: [{ name: "ops", match: { kind: "valve" }, webhook: { url } }] },
    /route "ops" \(routes\[0\]\): 'match\.kind' must be \("process" \| "sensor" \| "feed"\), got "valve"/,
  );
  refused(
    { routes: [{ name: "ops", match: { streams: "x" }, webhook: { url } }] },
    /route "ops" \(routes\[0\]\): 'match\.streams' is not a known field/,
  );
  refused(
    { routes: [{ name: "ops", webhook: { url: "ftp://x" } }] },
    /route "ops" \(routes\[0\]\): 'webhook\.url' must be an http\(s\) URL/,
  );
  refused(
    { routes: [{ name: "ops", webhook: { url, format: "teams" } }] },
    /'webhook\.format' must be \("json" \| "slack"\), got "teams"/,
  );
  refused(
    { routes: [{ name: "ops", webhook: { url }, repeat_every: "4 hours" }] },
    /route "ops" \(routes\[0\]\): 'repeat_every' must be a duration/,
  );
  refused(
    { routes: [{ name: "ops", webhook: { url }, repeat_every: "10ms" }] },
    /'repeat_every' must be at least 1s/,
  );
  refused(
    { routes: [{ name: "ops", webhook: { url, secret: "whsec_!!" } }] },
    /'webhook\.secret' must be whsec_<base64>/,
  );
  refused(
    { routes: [{ name: "ops", webhook: { url, secret_env: "OPS_SECRET" } }] },
    /route "ops" \(routes\[0\]\): 'webhook\.secret_env' names OPS_SECRET, which is not set/,
  );
  refused(
    { routes: [{ name: "ops", webhook: { url }, retry: { initial: "1m", max: "1s" } }] },
    /route "ops" \(routes\[0\]\): 'retry\.max' \(1000 ms\) must not be shorter than 'retry\.initial' \(60000 ms\)/,
  );
  refused(
    { routes: [{ name: "ops", webhook: { url }, retry: { max: "5s" } }] },
    /'retry\.max' \(5000 ms\) must not be shorter than 'retry\.initial' \(10000 ms, the default when it is not set\)/,
  );
  // fetch refuses a URL with credentials on every delivery, and its error would show them.
  refused(
    { routes: [{ name: "ops", webhook: { url: "http://hook:s3cret@hooks.example/x" } }] },
    /route "ops" \(routes\[0\]\): 'webhook\.url' must not hold user:password@/,
  );
  // A secret that cannot sign stops the start, not every delivery: base64 of an impossible
  // length, inline or from the environment, and a short one from the environment.
  for (const secret of ["whsec_A", "whsec_abcde", "whsec_"]) {
    refused({ routes: [{ name: "ops", webhook: { url, secret } }] }, /'webhook\.secret' must be/);
    refused(
      { routes: [{ name: "ops", webhook: { url, secret_env: "OPS_SECRET" } }] },
      /'webhook\.secret_env' names OPS_SECRET, whose value must be whsec_ followed by base64/,
      { OPS_SECRET: secret },
    );
  }
  refused(
    { routes: [{ name: "ops", webhook: { url, secret_env: "OPS_SECRET" } }] },
    /'webhook\.secret_env' names OPS_SECRET, whose value must be whsec_<base64> or at least 16/,
    { OPS_SECRET: "abc" },
  );
  // The next try's date must stay a date.
  refused(
    { routes: [{ name: "ops", webhook: { url }, retry: { max: "100000000d" } }] },
    /'retry\.max' must be at most 7d/,
  );
  // A timer cannot hold more than about 24.8 days, and a receiver is not waited on for hours.
  refused(
    { routes: [{ name: "ops", webhook: { url, timeout: "30d" } }] },
    /'webhook\.timeout' must be at most 10m/,
  );

  refused(
    {
      routes: [
        { name: "ops", webhook: { url } },
        { name: "ops", webhook: { url } },
      ],
    },
    /route "ops" \(routes\[1\]\): 'name' is used by routes\[0\] too/,
  );
});

test("loadNotifyConfig names the file when it cannot be read", async () => {
  await assert.rejects(
    loadNotifyConfig("/nonexistent/notify.json", {}),
    (error: Error) =>
      error instanceof NotifyConfigError &&
      error.message.startsWith("NOTIFY_CONFIG /nonexistent/notify.json:"),
  );
});

test("parseNotifyConfig refuses a URL it cannot parse naming the field, without quoting it", () => {
  const cases: [unknown, RegExp][] = [
    [
      { routes: [{ name: "ops", webhook: { url: "hooks.slack.com/services/T0/B0/XYZSECRET" } }] },
      /^route "ops" \(routes\[0\]\): 'webhook\.url' must be an http\(s\) URL/,
    ],
    [{ routes: [{ name: "ops", webhook: { url: "" } }] }, /'webhook\.url' must be an http\(s\)/],
    [
      { routes: [{ name: "ops", webhook: { url: "http://[::1/XYZSECRET" } }] },
      /'webhook\.url' must be an http\(s\)/,
    ],
    [
      { console_url: "anomaly.plant.example/XYZSECRET", routes: [] },
      /^'console_url' must be an http\(s\) URL/,
    ],
  ];
  for (const [file, message] of cases) {
    assert.throws(
      () => parseNotifyConfig(JSON.stringify(file)),
      (error: Error) =>
        error instanceof NotifyConfigError &&
        message.test(error.message) &&
        !error.message.includes("XYZSECRET") &&
        // One complaint: the credentials check does not pile on for a URL that is none.
        !error.message.includes("user:password"),
      JSON.stringify(file),
    );
  }
});

test("parseNotifyConfig never quotes a secret put into secret_env by mistake", () => {
  const url = "https://hooks.example";
  const secrets = [
    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw+/=",
    "xoxb-1234-secret-token",
    "Zq8rT2vLk9pW3mN7xB4c",
  ];
  for (const secret of secrets) {
    assert.throws(
      () =>
        parseNotifyConfig(
          JSON.stringify({ routes: [{ name: "ops", webhook: { url, secret_env: secret } }] }),
        ),
      (error: Error) =>
        error instanceof NotifyConfigError &&
        /^route "ops" \(routes\[0\]\): 'webhook\.secret_env' /.test(error.message) &&
        !error.message.includes(secret) &&
        !error.message.includes(secret.slice(6, 20)),
      secret,
    );
  }
  // A secret whose shape is a variable's name is still not quoted when it is not set ...
  refused(
    { routes: [{ name: "ops", webhook: { url, secret_env: "Zq8rT2vLk9pW3mN7xB4c" } }] },
    /'webhook\.secret_env' names a variable \(not quoted: it looks like a secret/,
  );
  // ... nor when it is set to something that cannot sign.
  refused(
    { routes: [{ name: "ops", webhook: { url, secret_env: "Zq8rT2vLk9pW3mN7xB4c" } }] },
    /^(?!.*Zq8rT2).*'webhook\.secret_env' names a variable .*whose value must be/,
    { Zq8rT2vLk9pW3mN7xB4c: "abc" },
  );
  // A variable's name reads as one, and is named.
  refused(
    { routes: [{ name: "ops", webhook: { url, secret_env: "NOTIFY_OPS_SECRET" } }] },
    /'webhook\.secret_env' names NOTIFY_OPS_SECRET, which is not set/,
  );
});
