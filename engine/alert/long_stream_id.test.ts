// End to end: a valid stream id of 128 ':' keeps its incident state, and one stream whose state cannot be saved holds only its own alerts.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { type AlertSink, alertsOf, startAlertSink } from "../_test/alert_sink.ts";
import { jsonFrame } from "../_test/engine_harness.ts";
import {
  type EngineProcess,
  postFrameUntilTaken,
  spawnEngine,
  waitReady,
} from "../_test/engine_process.ts";
import { type ModelFixture, trainFixtureModel } from "../_test/model_fixture.ts";
import { waitFor } from "../_test/wait_for.ts";
import { incidentStateDir } from "./incident_state_store.ts";

const SECOND = 1000;
// Frame time an hour back, one frame a second.
const T0 = Math.floor(Date.now() / SECOND) * SECOND - 3600 * SECOND;
/** Matches STREAM_ID_PATTERN; percent-encoded it would be a 374-byte file name. */
const ODD = `pump-${":".repeat(123)}`;

let model: ModelFixture;
let sink: AlertSink;
let dataDir: string;
let engine: EngineProcess | undefined;

before(async () => {
  [model, sink, dataDir] = await Promise.all([
    trainFixtureModel({ features: 12, name: "pumps" }),
    startAlertSink(),
    mkdtemp(join(tmpdir(), "long-stream-id-")),
  ]);
});

after(async () => {
  await engine?.kill("SIGKILL");
  await sink?.close();
  await model?.remove();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

/** Posts 5 normal frames (a full window) then 2 spiked ones of `stream`: an incident opens. */
async function openIncident(port: number, stream: string) {
  for (let i = 0; i < 7; i++) {
    const values = i >= 5 ? model.spikedFrame(i, 3) : model.normalFrame(i);
    const body = jsonFrame(model.featureNames, values, {
      stream_id: stream,
      timestamp: T0 + i * SECOND,
    });
    await postFrameUntilTaken(port, body, `frame ${i} of ${stream.slice(0, 12)}`);
  }
}

const opened = (stream: string) => alertsOf(sink, stream).filter((a) => a.event === "opened");

async function alertStats(port: number) {
  const stats = await (await fetch(`http://127.0.0.1:${port}/stats`)).json();
  return stats.alerts as { held?: number; held_reason?: string; outbox: number };
}

test("engine delivers the incidents of a 128-':' stream id and of the model's other streams, and shows alerts it holds in /stats", async () => {
  engine = spawnEngine("node", {
    MODEL_DIR: model.dir,
    DEFAULT_MODEL_NAME: model.name,
    NESTJS_URL: sink.origin,
    DATA_DIR: dataDir,
    RETRY_BASE_MS: "5",
    RETRY_MAX_MS: "50",
  });
  const port = await engine.port();
  await waitReady(port);
  const states = incidentStateDir(dataDir, model.name);
  // A folder where stream "blocked"'s state file goes: saving its state fails as long as it is there.
  await mkdir(join(states, "blocked.json"), { recursive: true });

  await openIncident(port, ODD);
  await openIncident(port, "blocked");
  await openIncident(port, "pump-2");
  await waitFor(() => opened(ODD).length === 1, "the 128-':' stream's incident delivered", 20_000);
  await waitFor(() => opened("pump-2").length === 1, "the other stream's incident", 20_000);
  assert.equal(opened("blocked").length, 0, "its state is not kept, so its alert is held");
  await waitFor(async () => (await alertStats(port)).held === 1, "/stats counts the held alert");
  assert.match((await alertStats(port)).held_reason ?? "", /blocked\.json/);
  assert.equal(
    engine.logs().filter((l) => l.msg?.startsWith("could not keep incident state")).length,
    1,
    "one warning for the outage",
  );
  for (const file of await readdir(states)) assert.ok(Buffer.byteLength(file) <= 160, file);

  await rm(join(states, "blocked.json"), { recursive: true });
  await waitFor(() => opened("blocked").length === 1, "the held alert delivered once it saves");
  await waitFor(async () => (await alertStats(port)).held === 0, "nothing held");
  assert.equal((await alertStats(port)).held_reason, undefined);
  // The long stream's state was kept: a restart would go on with its open incident.
  assert.equal((await readdir(states)).filter((f) => f.endsWith(".json")).length, 3);
});
