import assert from "node:assert/strict";
import { test } from "node:test";
import { backendConfigSchema, ConfigError, engineConfigSchema, parseConfig } from "./config.ts";

test("engine config has the original design's defaults", () => {
  const c = parseConfig(engineConfigSchema, {});
  assert.equal(c.APP_HOST, "0.0.0.0");
  assert.equal(c.APP_PORT, 9000);
  assert.equal(c.NESTJS_URL, "http://localhost:3000");
  assert.equal(c.NESTJS_ANOMALY_ENDPOINT, "/api/v1/alert");
  assert.equal(c.QUEUE_MAX_SIZE, 100);
  assert.equal(c.INFERENCE_BATCH_SIZE, 64);
  assert.equal(c.DEFAULT_MODEL_NAME, "featurewise_ocsvm");
  assert.equal(c.DEFAULT_DEVICE, "auto");
  assert.equal(c.MAX_RETRIES, 5);
  assert.equal(c.ANOMALY_THRESHOLD, 0.9);
  assert.equal(c.MAX_BODY_BYTES, 512 * 1024);
  assert.equal(c.MAX_DECOMPRESSED_BYTES, 4 * 1024 * 1024);
  assert.equal(c.ALERT_SIGNING_SECRET, undefined);
});

test("engine config coerces numbers, trims URLs and lower-cases choices", () => {
  const c = parseConfig(engineConfigSchema, {
    APP_PORT: "9100",
    ANOMALY_THRESHOLD: "0.75",
    NESTJS_URL: "http://backend:3000/",
    DEFAULT_DEVICE: "CPU",
  });
  assert.equal(c.APP_PORT, 9100);
  assert.equal(c.ANOMALY_THRESHOLD, 0.75);
  assert.equal(c.NESTJS_URL, "http://backend:3000");
  assert.equal(c.DEFAULT_DEVICE, "cpu");
});

test("engine config rejects each out-of-range value naming the variable", () => {
  const bad: Record<string, string> = {
    MAX_RETRIES: "0",
    INFERENCE_BATCH_SIZE: "0",
    QUEUE_MAX_SIZE: "1.5",
    APP_PORT: "70000",
    ANOMALY_THRESHOLD: "1.1",
    DEFAULT_DEVICE: "tpu",
    NESTJS_URL: "ftp://x",
    NESTJS_ANOMALY_ENDPOINT: "no-slash",
    LOG_LEVEL: "loud",
    ALERT_SIGNING_SECRET: "short",
    HISTORY_MAX_BYTES: "10000",
    FRAME_MAX_AHEAD_S: "0",
  };
  for (const [name, value] of Object.entries(bad)) {
    assert.throws(
      () => parseConfig(engineConfigSchema, { [name]: value }),
      (e: unknown) => e instanceof ConfigError && e.message.includes(`'${name}'`),
      `${name}=${value}`,
    );
  }
  assert.throws(
    () => parseConfig(engineConfigSchema, { MAX_RETRIES: "6" }),
    /'MAX_RETRIES' must be an integer 1\.\.5, got "6"/,
  );
  assert.throws(
    () => parseConfig(engineConfigSchema, { HISTORY_MAX_BYTES: "10000" }),
    /'HISTORY_MAX_BYTES' must be 0 \(off\) or at least 1048576 \(1 MiB\), got 10000/,
  );
  assert.equal(parseConfig(engineConfigSchema, { HISTORY_MAX_BYTES: "0" }).HISTORY_MAX_BYTES, 0);
  // Shorter runs leave the retraining gate no run to inject anomalies into.
  assert.throws(
    () => parseConfig(engineConfigSchema, { HISTORY_RUN_FRAMES: "119" }),
    /'HISTORY_RUN_FRAMES' must be at least 120 \(the retraining gate injects anomalies/,
  );
  assert.equal(
    parseConfig(engineConfigSchema, { HISTORY_RUN_FRAMES: "120" }).HISTORY_RUN_FRAMES,
    120,
  );
  // A number is written in decimals: hexadecimal and binary are typos here, not 0.5 or 1.
  for (const value of ["0x1", "0b1", "0o1", "", " ", "1,5", "Infinity"]) {
    assert.throws(
      () => parseConfig(engineConfigSchema, { ANOMALY_THRESHOLD: value }),
      /'ANOMALY_THRESHOLD' must be a number 0\.\.1/,
      JSON.stringify(value),
    );
  }
  for (const [value, read] of [
    ["0.5", 0.5],
    [".5", 0.5],
    ["1.", 1],
    ["5e-1", 0.5],
    [" 0.25 ", 0.25],
  ] as const) {
    assert.equal(
      parseConfig(engineConfigSchema, { ANOMALY_THRESHOLD: value }).ANOMALY_THRESHOLD,
      read,
    );
  }
});

test("both services refuse a signing secret that cannot sign and keep one that can", () => {
  for (const schema of [engineConfigSchema, backendConfigSchema]) {
    for (const bad of ["whsec_not base64 at all!!", "whsec_q-8_Zr0xAbCdEfGh", "whsec_"]) {
      assert.throws(
        () => parseConfig(schema, { ALERT_SIGNING_SECRET: bad }),
        /'ALERT_SIGNING_SECRET' must be whsec_ followed by base64/,
        bad,
      );
    }
    assert.throws(
      () => parseConfig(schema, { ALERT_SIGNING_SECRET: "short" }),
      /'ALERT_SIGNING_SECRET' must be whsec_<base64> or at least 16 characters/,
    );
    const good = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    assert.equal(parseConfig(schema, { ALERT_SIGNING_SECRET: good }).ALERT_SIGNING_SECRET, good);
    const plain = "a plain secret of 16+ chars";
    assert.equal(parseConfig(schema, { ALERT_SIGNING_SECRET: plain }).ALERT_SIGNING_SECRET, plain);
    assert.equal(parseConfig(schema, { ALERT_SIGNING_SECRET: "" }).ALERT_SIGNING_SECRET, undefined);
  }
});

test("config lists every bad variable at once", () => {
  assert.throws(
    () => parseConfig(engineConfigSchema, { MAX_RETRIES: "9", APP_PORT: "x" }),
    (e: unknown) =>
      e instanceof ConfigError && /APP_PORT/.test(e.message) && /MAX_RETRIES/.test(e.message),
  );
});

test("backend config treats an empty DATABASE_URL as unset and checks its scheme", () => {
  assert.equal(parseConfig(backendConfigSchema, { DATABASE_URL: "" }).DATABASE_URL, undefined);
  const url = "postgres://postgres@127.0.0.1:5432/test";
  assert.equal(parseConfig(backendConfigSchema, { DATABASE_URL: url }).DATABASE_URL, url);
  assert.throws(
    () => parseConfig(backendConfigSchema, { DATABASE_URL: "mysql://x" }),
    /DATABASE_URL/,
  );
  assert.equal(parseConfig(backendConfigSchema, {}).PORT, 3000);
});

test("engine config has the measured incident defaults and validates incident variables", () => {
  const c = parseConfig(engineConfigSchema, {});
  assert.equal(c.ALERT_MODE, "incident");
  assert.equal(c.INCIDENT_CONFIRM_K, 2);
  assert.equal(c.INCIDENT_CONFIRM_N, 3);
  assert.equal(c.INCIDENT_QUIET_WINDOWS, 30);
  assert.equal(c.INCIDENT_UPDATE_MIN_MS, 120_000);
  assert.equal(c.INCIDENT_UPDATE_SEVERITY_RISE, 2);
  assert.equal(c.INCIDENT_STALE_MS, 300_000);
  assert.equal(parseConfig(engineConfigSchema, { ALERT_MODE: "Frame" }).ALERT_MODE, "frame");
  const bad: Record<string, string> = {
    ALERT_MODE: "window",
    INCIDENT_CONFIRM_K: "0",
    INCIDENT_CONFIRM_N: "65",
    INCIDENT_QUIET_WINDOWS: "0",
    INCIDENT_UPDATE_MIN_MS: "-1",
    INCIDENT_UPDATE_SEVERITY_RISE: "x",
    INCIDENT_STALE_MS: "10",
  };
  for (const [name, value] of Object.entries(bad)) {
    assert.throws(
      () => parseConfig(engineConfigSchema, { [name]: value }),
      (e: unknown) => e instanceof ConfigError && e.message.includes(`'${name}'`),
      `${name}=${value}`,
    );
  }
});

test("engine config refuses INCIDENT_CONFIRM_K above INCIDENT_CONFIRM_N at start, not once the model is loaded", () => {
  assert.throws(
    () => parseConfig(engineConfigSchema, { INCIDENT_CONFIRM_K: "5" }),
    (e: unknown) =>
      e instanceof ConfigError &&
      e.message.includes("'INCIDENT_CONFIRM_K' (5) must not exceed 'INCIDENT_CONFIRM_N' (3)"),
  );
  const c = parseConfig(engineConfigSchema, { INCIDENT_CONFIRM_K: "5", INCIDENT_CONFIRM_N: "5" });
  assert.deepEqual([c.INCIDENT_CONFIRM_K, c.INCIDENT_CONFIRM_N], [5, 5]);
});

test("backend config refuses a simulator plan past its sensor budget at start, naming both variables", () => {
  assert.throws(
    () => parseConfig(backendConfigSchema, { SIMULATOR_RATE_HZ: "1", SIMULATOR_STREAMS: "100" }),
    (e: unknown) =>
      e instanceof ConfigError &&
      e.message.includes(
        "'SIMULATOR_STREAMS' (100) × 'SIMULATOR_FEATURES' (25000) = 2500000 sensors, more than the simulator's 1000000: at most 40 streams of 25000 features",
      ),
  );
  // Within it, or with the simulator off, the same streams are fine.
  const fits = { SIMULATOR_RATE_HZ: "1", SIMULATOR_STREAMS: "100", SIMULATOR_FEATURES: "10000" };
  assert.equal(parseConfig(backendConfigSchema, fits).SIMULATOR_STREAMS, 100);
  assert.equal(
    parseConfig(backendConfigSchema, { SIMULATOR_STREAMS: "100" }).SIMULATOR_STREAMS,
    100,
  );
});

test("backend config takes an optional console token of at least 16 characters", () => {
  assert.equal(parseConfig(backendConfigSchema, {}).CONSOLE_TOKEN, undefined);
  assert.equal(parseConfig(backendConfigSchema, { CONSOLE_TOKEN: "" }).CONSOLE_TOKEN, undefined);
  const token = "a-console-token-16+";
  assert.equal(parseConfig(backendConfigSchema, { CONSOLE_TOKEN: token }).CONSOLE_TOKEN, token);
  assert.throws(
    () => parseConfig(backendConfigSchema, { CONSOLE_TOKEN: "short" }),
    /'CONSOLE_TOKEN' must be at least 16 characters/,
  );
  assert.equal(parseConfig(backendConfigSchema, {}).ENGINE_HEALTH_TIMEOUT_MS, 2000);
});

test("engine scale-out settings default to one process on the in-memory bus", () => {
  const c = parseConfig(engineConfigSchema, {});
  assert.equal(c.ENGINE_ROLE, "all");
  assert.equal(c.FRAME_BUS, "memory");
  assert.equal(c.NATS_URL, "nats://127.0.0.1:4222");
  assert.equal(c.NATS_STREAM, "FRAMES");
  assert.equal(c.NATS_PARTITIONS, 32);
  const w = parseConfig(engineConfigSchema, {
    ENGINE_ROLE: "Worker",
    FRAME_BUS: "nats",
    NATS_URL: "nats://a:4222,nats://b:4222",
    NATS_PARTITIONS: "8",
  });
  assert.equal(w.ENGINE_ROLE, "worker");
  assert.equal(w.NATS_PARTITIONS, 8);
  for (const [name, value] of Object.entries({
    ENGINE_ROLE: "router",
    FRAME_BUS: "kafka",
    NATS_STREAM: "has.dot",
    NATS_PARTITIONS: "0",
    NATS_URL: "nats://a b",
    NATS_LEASE_MS: "10",
  })) {
    assert.throws(() => parseConfig(engineConfigSchema, { [name]: value }), new RegExp(name));
  }
});

test("parseConfig reads MODEL_ROUTES and refuses a bad one by name", () => {
  const c = parseConfig(engineConfigSchema, { MODEL_ROUTES: "boiler-*=boiler" });
  assert.deepEqual(c.MODEL_ROUTES, [{ glob: "boiler-*", model: "boiler" }]);
  assert.deepEqual(parseConfig(engineConfigSchema, {}).MODEL_ROUTES, []);
  assert.throws(
    () => parseConfig(engineConfigSchema, { MODEL_ROUTES: "*=a,b-*=b" }),
    /'MODEL_ROUTES' entry "b-\*=b" is never reached/,
  );
});
