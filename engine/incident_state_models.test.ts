import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rename, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { parseModelMetadata } from "../contracts/model.ts";
import { type AlertSink, alertsOf as sinkAlertsOf, startAlertSink } from "./_test/alert_sink.ts";
import { jsonFrame, startTestEngine, type TestEngine } from "./_test/engine_harness.ts";
import { type ModelFixture, trainFixtureModel } from "./_test/model_fixture.ts";
import { waitFor } from "./_test/wait_for.ts";
import { incidentStateDir } from "./alert/incident_state_store.ts";
import { ModelRegistry } from "./infer/registry.ts";

// Two assets in one engine whose roles swap between two runs: the boiler is the default model and
// the packaging line routed, then the packaging line becomes the default and the boiler routed.
// Each model's open incident must carry over to its own model, whichever lane serves it.
let boiler: ModelFixture;
let packaging: ModelFixture;
let registryDir: string;
let dataDir: string;
let sink: AlertSink;
const engines: TestEngine[] = [];

before(async () => {
  [boiler, packaging] = await Promise.all([
    trainFixtureModel({ features: 12, name: "boiler" }),
    trainFixtureModel({ features: 9, name: "packaging" }),
  ]);
  registryDir = await mkdtemp(join(tmpdir(), "state-models-registry-"));
  dataDir = await mkdtemp(join(tmpdir(), "state-models-data-"));
  const registry = new ModelRegistry(registryDir);
  for (const f of [boiler, packaging]) {
    const onnx = await readFile(join(f.dir, `${f.name}.onnx`));
    const meta = parseModelMetadata(
      JSON.parse(await readFile(join(f.dir, `${f.name}.json`), "utf8")),
    );
    await registry.write(onnx, meta);
  }
  sink = await startAlertSink();
});
after(async () => {
  for (const e of engines) await e.stop().catch(() => {});
  await sink?.close();
  await Promise.all([boiler, packaging].map((f) => f?.remove()));
  await rm(registryDir, { recursive: true, force: true });
  await rm(dataDir, { recursive: true, force: true });
});

const T0 = Date.UTC(2026, 10, 24, 9);

async function start(
  defaultModel: string,
  routes: string,
  options: { data?: string; write?: (line: string) => void } = {},
): Promise<TestEngine> {
  const engine = await startTestEngine(
    { dir: registryDir, name: defaultModel },
    sink,
    {
      DATA_DIR: options.data ?? dataDir,
      MODEL_ROUTES: routes,
      INCIDENT_QUIET_WINDOWS: "3",
      ...(options.write ? { LOG_LEVEL: "info" } : {}),
    },
    { write: options.write },
  );
  engines.push(engine);
  return engine;
}

async function send(
  engine: TestEngine,
  f: ModelFixture,
  stream: string,
  t: number,
  spiked: boolean,
) {
  const values = spiked ? f.spikedFrame(t, 3) : f.normalFrame(t);
  const response = await engine.post(
    jsonFrame(f.featureNames, values, { stream_id: stream, timestamp: T0 + t * 1000 }),
  );
  assert.equal(response.status, 202, await response.clone().text());
}

/** First delivery of each alert for `stream`, in order. */
const alertsOf = (stream: string) => sinkAlertsOf(sink, stream);

test("each model's open incidents carry over to that model when the default model changes, from an earlier release's folder too", async () => {
  const first = await start("boiler", "line-b-*=packaging");
  for (let t = 0; t < 7; t++) {
    await send(first, boiler, "kiln", t, t >= 5);
    await send(first, packaging, "line-b-1", t, t >= 5);
  }
  await waitFor(
    () => alertsOf("kiln").length === 1 && alertsOf("line-b-1").length === 1,
    "both opened alerts",
  );
  await first.engine.shutdown(1000);
  // An earlier release kept the default model's states in DATA_DIR/incidents/.
  await rename(incidentStateDir(dataDir, "boiler"), join(dataDir, "incidents"));

  // The roles swap: the packaging line is the default, the boiler routed.
  const second = await start("packaging", "kiln*=boiler");
  assert.deepEqual(
    (await readdir(dataDir)).filter((n) => n.startsWith("incidents")).sort(),
    ["incidents-boiler", "incidents-packaging"],
    "the earlier release's folder moved to the model its states name",
  );
  assert.equal(alertsOf("kiln").length, 1, "the boiler's incident is not resolved as a switch");
  for (let t = 7; t < 14; t++) {
    await send(second, boiler, "kiln", t, false);
    await send(second, packaging, "line-b-1", t, false);
  }
  await waitFor(
    () => alertsOf("kiln").length === 2 && alertsOf("line-b-1").length === 2,
    "both resolved alerts",
  );
  for (const [stream, f] of [
    ["kiln", boiler],
    ["line-b-1", packaging],
  ] as const) {
    const [opened, resolved] = alertsOf(stream);
    assert.equal(opened.event, "opened");
    assert.equal(resolved.event, "resolved");
    assert.equal(resolved.incident_id, opened.incident_id, `${stream}: the same incident`);
    assert.equal(resolved.model_name, f.name);
    assert.equal(resolved.frame_timestamp, new Date(T0 + 13_000).toISOString(), stream);
  }
});

test("an open incident of a model no longer served is resolved at start, under that model, and its state removed", async () => {
  const data = join(dataDir, "unserved");
  const first = await start("boiler", "line-c-*=packaging", { data });
  for (let t = 0; t < 7; t++) await send(first, packaging, "line-c-1", t, t >= 5);
  await waitFor(() => alertsOf("line-c-1").length === 1, "the opened alert");
  await first.engine.shutdown(1000);

  // The packaging line's model is no longer served (taken out of MODEL_ROUTES).
  const lines: { msg: string; [field: string]: unknown }[] = [];
  await start("boiler", "", { data, write: (line) => void lines.push(JSON.parse(line)) });
  await waitFor(() => alertsOf("line-c-1").length === 2, "the resolved alert");
  const [opened, resolved] = alertsOf("line-c-1");
  assert.equal(resolved.event, "resolved");
  assert.equal(resolved.incident_id, opened.incident_id);
  assert.equal(resolved.model_name, "packaging", "named by the model it was opened under");
  assert.equal(resolved.model_version, opened.model_version);
  assert.equal(resolved.frame_timestamp, new Date(T0 + 6000).toISOString(), "at its last window");
  assert.deepEqual(resolved.anomalous_features, [], "no sensor of a model not loaded is named");
  assert.deepEqual(await readdir(incidentStateDir(data, "packaging")), [], "its state removed");
  const said = lines.filter((l) => l.msg === "incidents resolved: their model is not served");
  assert.deepEqual(
    said.map(({ model, incidents }) => ({ model, incidents })),
    [{ model: "packaging", incidents: 1 }],
  );
});
