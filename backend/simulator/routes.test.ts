import assert from "node:assert/strict";
import { after, test } from "node:test";
import { createBackendApp } from "../app.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";
import { startFrameSink } from "./_frame_sink.ts";
import { createPlantStreams } from "./plant_streams.ts";
import { createFrameSender } from "./send_frame.ts";
import { createSimulator } from "./simulator.ts";
import { checkPlan, MAX_STREAM_SENSORS } from "./stream_plan.ts";

const sink = await startFrameSink();
// One database for the file: the routes only need an app around the simulator.
let shared: Promise<TestDatabase> | undefined;
after(async () => {
  await (await shared)?.dispose();
  await sink.close();
});

async function simulatorApp(nFeatures = 50) {
  shared ??= testTargets()[0].open();
  const streams = createPlantStreams({ nFeatures, seed: 1 });
  const simulator = createSimulator({ streams, send: createFrameSender({ engineUrl: sink.url }) });
  const app = createBackendApp({ database: await shared, simulator });
  const request = async (method: string, path: string, body?: string) => {
    const res = await app.request(path, { method, body });
    return { status: res.status, body: await res.json() };
  };
  return { streams, simulator, request };
}

test("POST /data/operating-point moves one of the run's streams, its first by default, and refuses another", async () => {
  const { simulator, request } = await simulatorApp();
  await simulator.start({ rate_hz: 1, streams: 2, anomaly_every_s: 0 });
  try {
    const other = await request(
      "POST",
      "/data/operating-point",
      '{"moved":true,"stream_id":"default"}',
    );
    assert.equal(other.status, 400);
    assert.equal(other.body.error, "invalid_request");
    assert.match(other.body.message, /"plant-0"\.\."plant-1"/);
    assert.deepEqual(simulator.status().moved_streams, []);
    const first = await request("POST", "/data/operating-point", '{"moved":true}');
    assert.deepEqual(
      [first.status, first.body.stream_id, first.body.moved],
      [200, "plant-0", true],
    );
    assert.deepEqual(simulator.status().moved_streams, ["plant-0"]);
  } finally {
    await simulator.stop();
  }
  // With no run, the single stream's name.
  const idle = await request("POST", "/data/operating-point", '{"moved":true}');
  assert.deepEqual([idle.status, idle.body.stream_id], [200, "default"]);
});

test("POST /data/send refuses a body that is not a JSON object with 400 invalid_request", async () => {
  const { simulator, request } = await simulatorApp();
  // The sink is the file's: other tests' runs may have sent it frames.
  const sent = sink.frames.length;
  for (const body of ["[]", '[{"stream_id":"a"}]', "null", "3", '"default"', "true"]) {
    const res = await request("POST", "/data/send", body);
    assert.equal(res.status, 400, body);
    assert.equal(res.body.error, "invalid_request", body);
  }
  assert.equal(sink.frames.length, sent, "no frame sent");
  assert.deepEqual(simulator.status().answers, {});
});

test("POST /data/stream refuses a plan past the simulator's memory budget, naming the most streams", async () => {
  const { streams, simulator, request } = await simulatorApp(25_000);
  const res = await request("POST", "/data/stream", '{"rate_hz":1,"streams":1000}');
  assert.equal(res.status, 400);
  assert.equal(res.body.error, "invalid_request");
  assert.match(res.body.message, /memory budget.*1000 × 25000 = 25000000: at most 40 streams/);
  assert.equal(simulator.status().running, false);
  assert.deepEqual(streams.known(), [], "no plant made");
  const plan = { rate_hz: 1, streams: MAX_STREAM_SENSORS / 25_000, anomaly_every_s: 0 };
  checkPlan(plan, 25_000);
  assert.throws(() => checkPlan({ ...plan, streams: plan.streams + 1 }, 25_000), RangeError);
  const status = await request("GET", "/data/stream");
  assert.deepEqual(
    [status.body.achieved_hz, status.body.behind_ms, status.body.skipped],
    [null, null, 0],
  );
});

test("driving the simulator is audited: a run started and stopped, a move; not a stop with nothing running", async () => {
  const { simulator, request } = await simulatorApp();
  const before = (await request("GET", "/api/v1/audit?limit=100")).body.events.length;
  const started = await request(
    "POST",
    "/data/stream",
    '{"rate_hz":1,"streams":1,"anomaly_every_s":0}',
  );
  assert.equal(started.status, 202);
  try {
    assert.equal((await request("POST", "/data/operating-point", '{"moved":true}')).status, 200);
  } finally {
    assert.equal((await request("DELETE", "/data/stream")).status, 200);
  }
  assert.equal((await request("DELETE", "/data/stream")).status, 200);
  assert.equal(simulator.status().running, false);
  const { events } = (await request("GET", "/api/v1/audit?limit=100")).body;
  const ours = events.slice(0, events.length - before).reverse();
  assert.deepEqual(
    ours.map((e: { action: string; target: string }) => `${e.action} ${e.target}`),
    [
      "simulator.start simulator:run",
      "simulator.move stream:default",
      "simulator.stop simulator:run",
    ],
  );
  assert.equal(ours[0].detail.plan.rate_hz, 1);
  assert.deepEqual(ours[1].detail, { moved: true });
  assert.equal(ours[0].actor.subject, "anonymous");
});
