// An engine that lost its state (killed, restarted on an empty DATA_DIR) never ends the incident it had open: the backend closes it once the engine opens the next one (real processes: backend, engine twice).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { type BackendProcess, startBackend } from "../backend/_test/backend_process.ts";
import { jsonFrame } from "./_test/engine_harness.ts";
import { restartedEngines } from "./_test/restarted_engines.ts";
import { waitFor } from "./_test/wait_for.ts";

const SECOND = 1000;
// Frame time an hour back, one frame a second.
const T0 = Math.floor(Date.now() / SECOND) * SECOND - 3600 * SECOND;

let backend: BackendProcess;
const suite = restartedEngines({
  modelName: "kiln",
  alertsTo: () => backend.base,
  env: { RETRY_BASE_MS: "5", RETRY_MAX_MS: "50" },
});
const { engineOn } = suite;

before(async () => {
  backend = await startBackend({ INCIDENT_SUPERSEDE_AFTER_S: "1" });
});

after(async () => {
  await backend?.service.stop("SIGTERM");
});

/** Posts frames `from .. to - 1` of stream `kiln-1`, spiked from `spikeFrom` on. */
async function send(port: number, from: number, to: number, spikeFrom: number) {
  for (let i = from; i < to; i++) {
    const values = i >= spikeFrom ? suite.model.spikedFrame(i, 3) : suite.model.normalFrame(i);
    const body = jsonFrame(suite.model.featureNames, values, {
      stream_id: "kiln-1",
      timestamp: T0 + i * SECOND,
    });
    const res = await fetch(`http://127.0.0.1:${port}/data-enqueue`, { method: "POST", body });
    assert.equal(res.status, 202, await res.text());
  }
}

interface Incident {
  incident_id: string;
  state: string;
  started_at: string;
  resolved_at: string | null;
  last_alert_at: string;
  superseded_by: string | null;
}

async function incidents(): Promise<Incident[]> {
  const res = await fetch(`${backend.base}/api/v1/incidents?stream_id=kiln-1`);
  assert.equal(res.status, 200);
  return ((await res.json()) as { incidents: Incident[] }).incidents;
}

test("an incident left open by an engine killed and restarted on an empty DATA_DIR is closed as superseded by the engine's next one", async () => {
  // 1. An incident opens and stays open (the spike goes on); the engine is killed.
  const first = await engineOn(suite.dataDir("first"));
  await send(first.port, 0, 12, 6);
  const [lost] = await waitFor(async () => {
    const all = await incidents();
    return all.length === 1 && all[0].state === "open" ? all : undefined;
  }, "the first incident, open, at the backend");
  first.engine.child.kill("SIGKILL");
  await first.engine.exited;

  // 2. The engine comes back without its state and opens another incident on the stream.
  const second = await engineOn(suite.dataDir("second"));
  await send(second.port, 100, 112, 106);
  const all = await waitFor(async () => {
    const got = await incidents();
    const old = got.find((i) => i.incident_id === lost.incident_id);
    return got.length === 2 && old?.state === "resolved" ? got : undefined;
  }, "the first incident closed");
  const old = all.find((i) => i.incident_id === lost.incident_id)!;
  const next = all.find((i) => i.incident_id !== lost.incident_id)!;
  assert.equal(next.state, "open");
  assert.equal(old.superseded_by, next.incident_id);
  assert.equal(old.resolved_at, old.last_alert_at, "closed at its last alert");
  assert.ok(Date.parse(old.resolved_at!) < Date.parse(next.started_at));
  const closedLog = await backend.service.waitForLog(
    (l) => l.msg === "incident closed: superseded" && l.incident_id === lost.incident_id,
    1000,
  );
  assert.equal(closedLog.superseded_by, next.incident_id);
});
