// How a run delivers its frames when the engine turns some away, is slow, or the clock steps.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { createLogger } from "../../telemetry/logger.ts";
import { waitFor } from "../_test/spawn_service.ts";
import { type FrameSinkOptions, type ScriptedAnswer, startFrameSink } from "./_frame_sink.ts";
import { createPlantStreams } from "./plant_streams.ts";
import { createFrameSender, type FrameSenderOptions } from "./send_frame.ts";
import { createSimulator, type Simulator } from "./simulator.ts";

const sinks: { close(): Promise<void> }[] = [];
const simulators: Simulator[] = [];
after(async () => {
  await Promise.all(simulators.map((s) => s.stop()));
  await Promise.all(sinks.map((s) => s.close()));
});

async function sink(script?: ScriptedAnswer[], options?: FrameSinkOptions) {
  const s = await startFrameSink(script, options);
  sinks.push(s);
  return s;
}

/** A simulator on a 20-sensor plant whose runs send with `streamSend` options; its log lines. */
function simulatorFor(
  engineUrl: string,
  streamSend: Omit<FrameSenderOptions, "engineUrl"> = {},
  now?: () => number,
) {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ service: "backend", write: (l) => lines.push(JSON.parse(l)) });
  const simulator = createSimulator({
    streams: createPlantStreams({ nFeatures: 20, seed: 5 }),
    send: createFrameSender({ engineUrl }),
    streamSend: createFrameSender({ engineUrl, ...streamSend }),
    now,
    log,
  });
  simulators.push(simulator);
  const warned = (msg: string) => lines.filter((l) => l.level === "warn" && l.msg === msg);
  return { simulator, lines, warned };
}

/** Resolves once `probe` holds (polled every 20 ms), or fails naming `what` after 20 s. */
const until = (probe: () => boolean, what: string) =>
  waitFor(async () => (probe() ? true : undefined), what, 20_000, 20);

test("simulator goes on with the other streams while one backs off, skipping that one's turns", async () => {
  const loading = {
    status: 503,
    headers: { "retry-after": "60" },
    body: { error: "model_not_ready", message: "loading" },
  };
  const s = await sink([], { answerFor: (id) => (id === "plant-1" ? loading : undefined) });
  const { simulator } = simulatorFor(s.url, { maxRetries: 5, retryBaseMs: 200, retryMaxMs: 2000 });
  await simulator.start({ rate_hz: 20, streams: 2, anomaly_every_s: 0 });
  const plant0 = () => s.frames.filter((f) => f.json.stream_id === "plant-0").length;
  await until(
    () => plant0() >= 20 && simulator.status().skipped >= 5,
    "plant-0's frames while plant-1 backs off",
  );
  const status = simulator.status();
  assert.ok(status.retries >= 1);
  assert.match(status.last_error ?? "", /^503 model_not_ready: loading$/);
  await simulator.stop();
});

test("simulator counts retries as they happen and warns on a frame's first failed attempt", async () => {
  const loading = { status: 503, body: { error: "model_not_ready", message: "loading" } };
  const s = await sink([], { answerFor: () => loading });
  const { simulator, warned } = simulatorFor(s.url, {
    maxRetries: 100,
    retryBaseMs: 20,
    retryMaxMs: 20,
  });
  await simulator.start({ rate_hz: 1, streams: 1, anomaly_every_s: 0 });
  // The first frame is still being retried: nothing answered yet, its retries already counted.
  await until(() => {
    const { retries, answers } = simulator.status();
    return retries >= 3 && Object.keys(answers).length === 0;
  }, "retries counted while the frame is still retried");
  const [first] = warned("frame not delivered");
  assert.deepEqual(
    [first.stream_id, first.status, first.code, first.attempt, first.retrying, first.count],
    ["default", 503, "model_not_ready", 1, true, 1],
  );
  assert.equal(warned("frame not delivered").length, 1, "the same problem again is not logged");
  await simulator.stop();
});

test("simulator counts the retries of a frame that fails after all of them", async () => {
  const s = await sink();
  await s.close();
  const { simulator } = simulatorFor(s.url, { maxRetries: 2, retryBaseMs: 1, retryMaxMs: 1 });
  await simulator.start({ rate_hz: 20, duration_s: 0.25, streams: 1, anomaly_every_s: 0 });
  await simulator.finished();
  const { answers, retries, frames_sent, last_error } = simulator.status();
  assert.ok(answers.error >= 1);
  assert.deepEqual([retries, frames_sent], [2 * answers.error, answers.error]);
  assert.match(last_error ?? "", /^engine_unreachable: engine at /);
});

test("simulator reports a frame the engine refuses in last_error, and logs it when it changes", async () => {
  let refusal: ScriptedAnswer = {
    status: 422,
    body: { error: "frame_missing_features", message: "1 model feature absent: feature_20" },
  };
  const s = await sink([], { answerFor: () => refusal });
  const { simulator, warned } = simulatorFor(s.url, { maxRetries: 5 });
  await simulator.start({ rate_hz: 50, streams: 1, anomaly_every_s: 0 });
  await until(() => (simulator.status().answers["422"] ?? 0) >= 10, "ten refused frames");
  let status = simulator.status();
  assert.equal(status.last_error, "422 frame_missing_features: 1 model feature absent: feature_20");
  assert.ok(Date.parse(status.last_error_at ?? "") > 0, "when it happened");
  assert.equal(status.running, true);
  assert.deepEqual(
    warned("frame not delivered").map((l) => [l.status, l.code, l.retrying, l.count]),
    [[422, "frame_missing_features", false, 1]],
    "logged once, not once a frame",
  );
  refusal = { status: 401, body: { error: "unauthorized", message: "bearer token required" } };
  await until(() => (simulator.status().answers["401"] ?? 0) >= 1, "a frame refused otherwise");
  status = simulator.status();
  assert.equal(status.last_error, "401 unauthorized: bearer token required");
  assert.deepEqual(warned("frame not delivered").at(-1)?.code, "unauthorized");
  assert.equal(status.retries, 0, "a refusal is not retried");
  await simulator.stop();
});

test("simulator reports the rate it achieves and warns when it falls behind the asked one", async () => {
  const s = await sink([], { answerFor: () => ({ status: 202, delayMs: 100 }) });
  const { simulator, warned } = simulatorFor(s.url);
  await simulator.start({ rate_hz: 50, streams: 1, anomaly_every_s: 0 });
  await until(() => warned("simulator falling behind").length > 0, "the warning");
  const status = simulator.status();
  assert.ok(status.achieved_hz !== null && status.achieved_hz < 45, `${status.achieved_hz}`);
  assert.ok(status.behind_ms !== null && status.behind_ms > 1000, `${status.behind_ms}`);
  const [line] = warned("simulator falling behind");
  assert.equal(line.rate_hz, 50);
  assert.ok((line.achieved_hz as number) < 45);
  await simulator.stop();
  assert.equal(warned("simulator falling behind").length, 1, "once a minute at most");
});

test("simulator keeps its pace when the wall clock steps back, and its timestamps still increase", async () => {
  const s = await sink();
  let offset = 0;
  const { simulator } = simulatorFor(s.url, {}, () => Date.now() + offset);
  await simulator.start({ rate_hz: 20, streams: 1, anomaly_every_s: 0 });
  await until(() => s.frames.length >= 5, "the first frames");
  // The system clock steps back a minute (NTP): frames go on coming at the rate.
  offset = -60_000;
  const before = s.frames.length;
  await until(() => s.frames.length >= before + 20, "frames after the step");
  await simulator.stop();
  const ts = s.frames.map((f) => f.json.timestamp);
  assert.ok(ts.every((t, i) => i === 0 || t > ts[i - 1]));
});
