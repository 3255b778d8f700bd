import assert from "node:assert/strict";
import { after, test } from "node:test";
import { HttpError } from "../../contracts/error.ts";
import { isRunning } from "../../contracts/running_condition.ts";
import {
  createPlant,
  defaultMove,
  mixSeed,
  plantDriveSensor,
  plantRunningCondition,
} from "../../models/signal/mod.ts";
import { createBackendApp } from "../app.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";
import { startFrameSink } from "./_frame_sink.ts";
import { frameBody, keyPrefixes } from "./frame_body.ts";
import { gzipText } from "./gzip.ts";
import { createPlantStreams } from "./plant_streams.ts";
import { createFrameSender } from "./send_frame.ts";
import { createSimulator } from "./simulator.ts";

const sinks: { close(): Promise<void> }[] = [];
after(() => Promise.all(sinks.map((s) => s.close())));
async function sink(script?: Parameters<typeof startFrameSink>[0]) {
  const s = await startFrameSink(script);
  sinks.push(s);
  return s;
}

// One database for the tests below that only need an app around the simulator.
let shared: Promise<TestDatabase> | undefined;
after(async () => (await shared)?.dispose());
async function simulatorApp(engineUrl: string, nFeatures = 50) {
  shared ??= testTargets()[0].open();
  const streams = createPlantStreams({ nFeatures, seed: 1 });
  const simulator = createSimulator({ streams, send: createFrameSender({ engineUrl }) });
  const app = createBackendApp({ database: await shared, simulator });
  const request = (method: string, path: string, body?: string) =>
    app.request(path, { method, body });
  return { streams, simulator, request };
}

/** Polls `probe` until true, or fails at the deadline. */
async function until(probe: () => boolean, what: string, timeoutMs = 10_000) {
  const deadline = AbortSignal.timeout(timeoutMs);
  while (!probe()) {
    if (deadline.aborted) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * A 1e300 level shift on a moved stream's coupled pair, schedules from its next frame: the plant
 * saturates both at the float32 limit, and the move's coupling then overflows one to Infinity.
 */
function injectOverflowOnMove(streams: ReturnType<typeof createPlantStreams>, streamId: string) {
  const plant = createPlant({ nFeatures: streams.nFeatures });
  const { coupled } = defaultMove(streams.nFeatures, [plantDriveSensor(plant)]);
  assert.ok(coupled);
  const features = [coupled.f, coupled.from];
  streams.inject(streamId, { kind: "level_shift", features, duration: 100, magnitude: 1e300 });
}

test("frameBody writes the upstream frame JSON with every feature in order", () => {
  const plant = createPlant({ nFeatures: 1000 });
  const values = plant.next();
  const text = frameBody(values, keyPrefixes(plant.featureNames), {
    timestamp: 5,
    streamId: "s-1",
  });
  const json = JSON.parse(text);
  assert.equal(json.timestamp, 5);
  assert.equal(json.stream_id, "s-1");
  assert.deepEqual(Object.keys(json.data), plant.featureNames);
  for (let i = 0; i < values.length; i++) {
    assert.ok(Math.abs(json.data[`feature_${i}`] - values[i]) <= Math.abs(values[i]) * 1e-6);
  }
});

test("frameBody rejects a non-finite value", () => {
  assert.throws(
    () => frameBody(new Float32Array([Number.NaN]), ['"a":'], { timestamp: 1, streamId: "x" }),
    RangeError,
  );
});

test("frame sender retries 5xx and backs off on 429 as long as Retry-After says", async () => {
  const s = await sink([{ status: 503 }, { status: 429, headers: { "retry-after": "1" } }]);
  const send = createFrameSender({ engineUrl: s.url, maxRetries: 3, retryBaseMs: 1 });
  const answer = await send(await gzipText('{"data":{"feature_0":1}}'));
  assert.equal(answer.status, 202);
  assert.equal(answer.attempts, 3);
  assert.ok(s.arrivals[2] - s.arrivals[1] >= 950, `waited ${s.arrivals[2] - s.arrivals[1]} ms`);
});

test("frame sender does not retry a 4xx other than 408 and 429", async () => {
  const s = await sink([{ status: 422 }]);
  const answer = await createFrameSender({ engineUrl: s.url, maxRetries: 3 })(await gzipText("{}"));
  assert.deepEqual([answer.status, answer.attempts], [422, 1]);
});

test("frame sender turns a network error that outlasts its retries into 502 engine_unreachable", async () => {
  const s = await sink();
  await s.close();
  const send = createFrameSender({ engineUrl: s.url, maxRetries: 2, retryBaseMs: 1 });
  const error = await send(await gzipText("{}")).catch((e) => e);
  assert.ok(error instanceof HttpError);
  assert.deepEqual([error.status, error.code], [502, "engine_unreachable"]);
});

test("simulator streams paced frames and records the ground truth of a planned anomaly", async () => {
  const s = await sink();
  const streams = createPlantStreams({ nFeatures: 200, seed: 3 });
  const simulator = createSimulator({ streams, send: createFrameSender({ engineUrl: s.url }) });
  await simulator.start({
    rate_hz: 100,
    duration_s: 0.3,
    streams: 2,
    anomaly_every_s: 0,
    anomalies: [
      {
        at_frame: 10,
        stream_id: "plant-1",
        kind: "level_shift",
        features: [42],
        duration: 5,
        magnitude: 50,
      },
    ],
  });
  await simulator.finished();
  const status = simulator.status();
  assert.equal(status.running, false);
  assert.equal(status.frames_sent, 60);
  assert.deepEqual(status.answers, { "202": 60 });
  const [truth] = status.injected;
  assert.deepEqual(
    [
      truth.stream_id,
      truth.kind,
      truth.features,
      truth.feature_names,
      truth.start_frame,
      truth.duration,
    ],
    ["plant-1", "level_shift", [42], ["feature_42"], 10, 5],
  );
  const plant1 = s.frames.filter((f) => f.json.stream_id === "plant-1").map((f) => f.json);
  assert.equal(plant1.length, 30);
  assert.ok(plant1.every((f, i) => i === 0 || f.timestamp > plant1[i - 1].timestamp));
  assert.equal(new Date(plant1[10].timestamp).toISOString(), truth.start_time);
  assert.equal(new Date(plant1[14].timestamp).toISOString(), truth.end_time);
  const before = plant1[9].data.feature_42;
  assert.ok(
    Math.abs(plant1[12].data.feature_42 - before) > Math.abs(plant1[8].data.feature_42 - before),
  );
});

test("simulator stops a machine as planned: the drive reads 0, the rest hold still, then it runs on", async () => {
  const s = await sink();
  const streams = createPlantStreams({ nFeatures: 50, seed: 3 });
  const simulator = createSimulator({ streams, send: createFrameSender({ engineUrl: s.url }) });
  await simulator.start({
    rate_hz: 100,
    duration_s: 0.2,
    streams: 1,
    anomaly_every_s: 0,
    stops: [{ at_frame: 5, duration: 6 }],
  });
  await simulator.finished();
  const frames = s.frames.map((f) => f.json.data as Record<string, number>);
  assert.equal(frames.length, 20);
  const running = plantRunningCondition(createPlant({ nFeatures: 50 }));
  assert.ok(running, "the plant has a drive sensor");
  const drive = (f: Record<string, number>) => f[running.feature];
  const runs = (f: Record<string, number>) => isRunning(running, drive(f));
  assert.deepEqual(
    frames.map(runs),
    frames.map((_, i) => i < 5 || i >= 11),
    "frames 5..10 are a stopped machine's",
  );
  // While stopped every other sensor holds the last running reading.
  for (let i = 5; i < 11; i++) {
    assert.equal(frames[i].feature_10, frames[4].feature_10);
    assert.equal(drive(frames[i]), 0);
  }
  assert.notEqual(frames[12].feature_10, frames[11].feature_10, "it runs on");
});

test("simulator kills the drive's sensor as planned: it reads 0 while the machine and every other reading run on", async () => {
  /** The frames of a 20-frame run of one stream with `stops`. */
  async function run(stops: { at_frame: number; duration: number; kind?: "sensor" }[]) {
    const s = await sink();
    const streams = createPlantStreams({ nFeatures: 50, seed: 3 });
    const simulator = createSimulator({ streams, send: createFrameSender({ engineUrl: s.url }) });
    await simulator.start({ rate_hz: 100, duration_s: 0.2, streams: 1, anomaly_every_s: 0, stops });
    await simulator.finished();
    return s.frames.map((f) => f.json.data as Record<string, number>);
  }
  const frames = await run([{ at_frame: 5, duration: 6, kind: "sensor" }]);
  const unstopped = await run([]);
  assert.equal(frames.length, 20);
  const running = plantRunningCondition(createPlant({ nFeatures: 50 }));
  assert.ok(running, "the plant has a drive sensor");
  const drive = (f: Record<string, number>) => f[running.feature];
  assert.deepEqual(
    frames.map((f) => isRunning(running, drive(f))),
    frames.map((_, i) => i < 5 || i >= 11),
    "frames 5..10 read as stopped",
  );
  // The machine runs on: every other reading is the unstopped run's, frame for frame.
  const feature: string = running.feature;
  for (let i = 0; i < 20; i++) {
    const without = (f: Record<string, number>): [string, number][] =>
      Object.entries(f).filter(([name]) => name !== feature);
    assert.deepEqual(without(frames[i]), without(unstopped[i]), `frame ${i}`);
    assert.equal(
      drive(frames[i]),
      i >= 5 && i < 11 ? 0 : drive(unstopped[i]),
      `frame ${i}'s drive`,
    );
  }
});

test("simulator moves the operating point as planned and for good: a fifth of the sensors 4 std higher, the drive left alone", async () => {
  const s = await sink();
  const streams = createPlantStreams({ nFeatures: 50, seed: 3 });
  const simulator = createSimulator({ streams, send: createFrameSender({ engineUrl: s.url }) });
  await simulator.start({
    rate_hz: 200,
    duration_s: 0.4,
    streams: 1,
    anomaly_every_s: 0,
    moves: [{ at_frame: 40 }],
  });
  await simulator.finished();
  const frames = s.frames.map((f) => f.json.data as Record<string, number>);
  assert.equal(frames.length, 80);
  assert.deepEqual(simulator.status().moved_streams, ["default"]);
  // The same plant unmoved, frame for frame: the difference is the move.
  const plant = createPlant({ nFeatures: 50, seed: 20_251_124, noiseSeed: mixSeed(3, 0) });
  const plain = Array.from({ length: 80 }, () => Float32Array.from(plant.next()));
  const running = plantRunningCondition(plant);
  assert.ok(running);
  const drive = Number(running.feature.slice("feature_".length));
  const { std, level } = plant.sensors;
  const moved = (i: number, f: number) => frames[i][`feature_${f}`] - plain[i][f];
  for (let i = 0; i < 40; i++) {
    for (let f = 0; f < 50; f++)
      assert.ok(
        Math.abs(moved(i, f)) <= 1e-3 * (1 + Math.abs(level[f])),
        `frame ${i} feature ${f} unmoved`,
      );
  }
  const shifted = [...Array(50).keys()].filter((f) => f !== drive).slice(0, 10);
  for (let i = 40; i < 80; i++) {
    for (const f of shifted) {
      assert.ok(
        Math.abs(moved(i, f) - 4 * std[f]) <= 1e-3 * (1 + Math.abs(level[f])),
        `frame ${i} feature ${f} shifted`,
      );
    }
    assert.ok(
      Math.abs(moved(i, drive)) <= 1e-3 * Math.abs(level[drive]),
      "the drive is left alone",
    );
    assert.ok(isRunning(running, frames[i][running.feature]), "the machine still runs");
  }
});

test("POST /data/operating-point moves a stream's operating point and back; bad input changes nothing", async () => {
  const s = await sink();
  const db = await testTargets()[0].open();
  try {
    const streams = createPlantStreams({ nFeatures: 50, seed: 1 });
    const simulator = createSimulator({ streams, send: createFrameSender({ engineUrl: s.url }) });
    const app = createBackendApp({ database: db, simulator });
    const post = (body: string) => app.request("/data/operating-point", { method: "POST", body });
    for (const bad of [
      '{"moved":"yes"}',
      '{"stream_id":"a b","moved":true}',
      "{}",
      "[",
      '{"moved":true,"x":1}',
    ]) {
      const res = await post(bad);
      assert.equal(res.status, 400, bad);
      assert.match((await res.json()).error, /^invalid_(request|json)$/);
    }
    assert.deepEqual(simulator.status().moved_streams, []);
    const res = await post('{"stream_id":"line-2","moved":true}');
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.deepEqual(
      [body.stream_id, body.moved, body.shifted_sensors, body.shift_std],
      ["line-2", true, 10, 4],
    );
    assert.equal((await (await app.request("/data/stream")).json()).moved_streams[0], "line-2");
    const back = await post('{"stream_id":"line-2","moved":false}');
    assert.deepEqual(await back.json(), { stream_id: "line-2", moved: false });
    assert.deepEqual(simulator.status().moved_streams, []);
  } finally {
    await db.dispose();
  }
});

test("simulator rejects a plan naming a feature the plant does not have", async () => {
  const streams = createPlantStreams({ nFeatures: 10, seed: 3 });
  const simulator = createSimulator({
    streams,
    send: createFrameSender({ engineUrl: "http://127.0.0.1:9" }),
  });
  await assert.rejects(
    simulator.start({
      rate_hz: 1,
      streams: 1,
      anomaly_every_s: 0,
      anomalies: [{ at_frame: 0, features: [10] }],
    }),
    /'features' must be 0..9/,
  );
});

test("POST /data/send answers with the engine's status and body", async () => {
  const s = await sink([{ status: 429, headers: { "retry-after": "1" } }]);
  const db = await testTargets()[0].open();
  try {
    const streams = createPlantStreams({ nFeatures: 50, seed: 1 });
    const simulator = createSimulator({ streams, send: createFrameSender({ engineUrl: s.url }) });
    const app = createBackendApp({ database: db, simulator });
    const busy = await app.request("/data/send", { method: "POST" });
    assert.deepEqual([busy.status, await busy.json()], [429, { status: "scripted" }]);
    assert.equal(busy.headers.get("retry-after"), "1", "the engine's Retry-After goes through");
    assert.match(busy.headers.get("content-type") ?? "", /^application\/json/);
    const ok = await app.request("/data/send", { method: "POST", body: '{"stream_id":"line-7"}' });
    assert.deepEqual([ok.status, await ok.json()], [202, { status: "accepted" }]);
    assert.equal(s.frames[0].json.stream_id, "line-7");
    assert.equal(Object.keys(s.frames[0].json.data).length, 50);
    const bad = await app.request("/data/stream", { method: "POST", body: '{"rate_hz":0}' });
    assert.equal(bad.status, 400);
    // Another site's page cannot make a visitor's browser drive the simulator.
    const sent = s.frames.length;
    for (const path of ["/data/send", "/data/stream", "/data/operating-point"]) {
      const crossSite = await app.request(path, {
        method: "POST",
        body: '{"rate_hz":1}',
        headers: { origin: "http://evil.test", "sec-fetch-site": "cross-site" },
      });
      assert.equal(crossSite.status, 401, path);
    }
    assert.equal(s.frames.length, sent);
    assert.equal(simulator.status().running, false);
  } finally {
    await db.dispose();
  }
});

test("simulator keeps one run however many POST /data/stream overlap, and DELETE stops it", async () => {
  const s = await sink();
  const { simulator, request } = await simulatorApp(s.url);
  const plan = '{"rate_hz":100,"duration_s":5,"anomaly_every_s":0}';
  const started = await Promise.all([1, 2, 3, 4].map(() => request("POST", "/data/stream", plan)));
  assert.deepEqual(
    started.map((r) => r.status),
    [202, 202, 202, 202],
  );
  await until(() => s.frames.length >= 5, "frames of the run");
  const stopped = await request("DELETE", "/data/stream");
  assert.equal((await stopped.json()).running, false);
  const stoppedAt = Date.now();
  // Another run's frames mark time: an orphaned run would keep sending "default" frames meanwhile.
  await simulator.start({ rate_hz: 100, duration_s: 5, streams: 2, anomaly_every_s: 0 });
  const later = () => s.frames.filter((f) => f.json.timestamp > stoppedAt);
  await until(() => later().length >= 40, "frames of the next run");
  await simulator.stop();
  assert.deepEqual(
    later().filter((f) => f.json.stream_id === "default").length,
    0,
    "no frame of the stopped run after DELETE",
  );
  assert.equal(simulator.status().running, false);
});

test("simulator refuses an anomaly magnitude past 1000 sensor std with 400, and the bound itself runs", async () => {
  const s = await sink();
  const { simulator, request } = await simulatorApp(s.url);
  for (const magnitude of ["1e300", "-1001", "1000.5"]) {
    const body = `{"rate_hz":1,"anomaly_every_s":0,"anomalies":[{"at_frame":0,"magnitude":${magnitude}}]}`;
    const res = await request("POST", "/data/stream", body);
    assert.equal(res.status, 400, magnitude);
    const error = await res.json();
    assert.equal(error.error, "invalid_request");
    assert.match(error.message, /magnitude/);
  }
  assert.equal(simulator.status().running, false);
  await assert.rejects(
    simulator.start({
      rate_hz: 1,
      streams: 1,
      anomaly_every_s: 0,
      anomalies: [{ at_frame: 0, magnitude: 1e300 }],
    }),
    /'magnitude' must be -1000..1000/,
  );
  const plan = {
    rate_hz: 100,
    duration_s: 0.05,
    anomaly_every_s: 0,
    anomalies: [{ at_frame: 0, kind: "spike", features: [7], duration: 2, magnitude: -1000 }],
  };
  assert.equal((await request("POST", "/data/stream", JSON.stringify(plan))).status, 202);
  await simulator.finished();
  assert.deepEqual(simulator.status().answers, { "202": 5 });
  assert.ok(s.frames[0].json.data.feature_7 < s.frames[2].json.data.feature_7);
});

test("simulator run goes on past a frame it cannot generate, reports it and drops that anomaly", async () => {
  const s = await sink();
  const streams = createPlantStreams({ nFeatures: 50, seed: 3 });
  const simulator = createSimulator({ streams, send: createFrameSender({ engineUrl: s.url }) });
  injectOverflowOnMove(streams, "default");
  await simulator.start({
    rate_hz: 100,
    duration_s: 0.1,
    streams: 1,
    anomaly_every_s: 0,
    moves: [{ at_frame: 3 }],
  });
  await simulator.finished();
  const status = simulator.status();
  assert.match(status.last_error ?? "", /stream default frame 3 not generated: .*not finite/);
  assert.equal(status.frames_sent, 9);
  assert.deepEqual(status.answers, { "202": 9 });
  // Ground truth: the anomaly as it went out, frames 0..2.
  const [truth] = status.injected;
  assert.deepEqual([truth.start_frame, truth.duration], [0, 3]);
  assert.equal(truth.end_time, new Date(s.frames[2].json.timestamp).toISOString());
  assert.ok(s.frames.every((f) => Object.values(f.json.data).every(Number.isFinite)));
  // The next run of the stream is not killed by it either.
  await simulator.start({ rate_hz: 100, duration_s: 0.05, streams: 1, anomaly_every_s: 0 });
  await simulator.finished();
  assert.deepEqual(simulator.status().answers, { "202": 5 });
});

test("POST /data/send answers 422 frame_invalid_value for a frame it cannot generate, then sends again", async () => {
  const s = await sink();
  const { streams, simulator, request } = await simulatorApp(s.url);
  injectOverflowOnMove(streams, "default");
  simulator.moveOperatingPoint("default", true);
  const failed = await request("POST", "/data/send");
  assert.equal(failed.status, 422);
  assert.equal((await failed.json()).error, "frame_invalid_value");
  assert.equal(s.frames.length, 0);
  const ok = await request("POST", "/data/send");
  assert.equal(ok.status, 202);
  assert.equal(s.frames.length, 1);
});

test("POST /data/stream refuses plan entries on a stream the run does not have", async () => {
  const s = await sink();
  const { streams, simulator, request } = await simulatorApp(s.url);
  const bad = [
    ['"anomalies":[{"at_frame":0,"stream_id":"default"}]', "anomalies[0]"],
    [
      '"stops":[{"at_frame":0,"duration":1},{"at_frame":1,"stream_id":"x","duration":1}]',
      "stops[1]",
    ],
    ['"moves":[{"at_frame":0,"stream_id":"plant-2"}]', "moves[0]"],
  ];
  for (const [entries, where] of bad) {
    const res = await request("POST", "/data/stream", `{"rate_hz":1,"streams":2,${entries}}`);
    assert.equal(res.status, 400, entries);
    const error = await res.json();
    assert.equal(error.error, "invalid_request");
    assert.ok(error.message.includes(`'${where}.stream_id'`), error.message);
  }
  assert.deepEqual(streams.known(), [], "no plant made");
  const plan = '{"rate_hz":1,"streams":2,"moves":[{"at_frame":5,"stream_id":"plant-1"}]}';
  assert.equal((await request("POST", "/data/stream", plan)).status, 202);
  await simulator.stop();
});

test("POST /data/stream refuses a stop of a kind it does not know, and runs nothing", async () => {
  const s = await sink();
  const { streams, simulator, request } = await simulatorApp(s.url);
  const res = await request(
    "POST",
    "/data/stream",
    '{"rate_hz":1,"stops":[{"at_frame":0,"duration":5,"kind":"valve"}]}',
  );
  assert.equal(res.status, 400);
  const error = await res.json();
  assert.equal(error.error, "invalid_request");
  assert.match(error.message, /stops\.0\.kind|stops\[0\]\.kind/);
  assert.deepEqual(streams.known(), [], "no plant made");
  assert.equal(simulator.status().running, false);
});

test("simulator holds a bounded number of plants however many stream ids are named", async () => {
  const s = await sink();
  const { streams, simulator, request } = await simulatorApp(s.url);
  await simulator.start({ rate_hz: 1, streams: 3, anomaly_every_s: 0 });
  for (let i = 0; i < 40; i++) {
    const res = await request("POST", "/data/send", `{"stream_id":"line-${i}"}`);
    assert.equal(res.status, 202);
  }
  // A stream the run does not have is refused while it goes on: no plant is made for it.
  const back = await request("POST", "/data/operating-point", '{"stream_id":"new","moved":false}');
  assert.equal(back.status, 400);
  const known = streams.known();
  assert.equal(known.length, 3 + 16);
  assert.deepEqual(known.filter((id) => id.startsWith("plant-")).sort(), [
    "plant-0",
    "plant-1",
    "plant-2",
  ]);
  assert.ok(known.includes("line-39") && !known.includes("line-0") && !known.includes("new"));
  await simulator.stop();
});

test("simulator start-up plan stands down once an operator started or stopped a run", async () => {
  const s = await sink();
  const plan = { rate_hz: 1, streams: 1, anomaly_every_s: 0 };
  for (const operator of ["start", "stop"] as const) {
    const streams = createPlantStreams({ nFeatures: 10, seed: 3 });
    const simulator = createSimulator({ streams, send: createFrameSender({ engineUrl: s.url }) });
    if (operator === "start") await simulator.start({ ...plan, streams: 2 });
    else await simulator.stop();
    assert.equal(await simulator.startUnlessOperated(plan), false, operator);
    assert.equal(simulator.status().plan?.streams ?? null, operator === "start" ? 2 : null);
    await simulator.stop();
  }
  const streams = createPlantStreams({ nFeatures: 10, seed: 3 });
  const simulator = createSimulator({ streams, send: createFrameSender({ engineUrl: s.url }) });
  assert.equal(await simulator.startUnlessOperated(plan), true);
  assert.equal(simulator.status().running, true);
  await simulator.stop();
});
