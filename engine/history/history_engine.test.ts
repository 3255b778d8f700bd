// The training history of real engine processes across restarts: incident ids are the alerts', the sampling schedule is stream time.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { jsonFrame } from "../_test/engine_harness.ts";
import { type EngineProcess, spawnEngine, waitReady } from "../_test/engine_process.ts";
import { type ModelFixture, trainFixtureModel } from "../_test/model_fixture.ts";
import { waitFor } from "../_test/wait_for.ts";
import { frameUse } from "./history_reader.ts";
import { runPhase } from "./history_recorder.ts";
import { type HistoryFrame, type HistoryIndex, readHistory } from "./mod.ts";

const SECOND = 1000;

/** The backend as the engine meets it: alerts in, verdicts and silences out. */
interface Backend {
  origin: string;
  alerts: {
    event: string;
    incident_id: string;
    incident_started_at: string;
    frame_timestamp: string;
  }[];
  verdicts: { incident_id: string; stream_id: string; verdict: string; at: string }[];
  silences: unknown[];
}

let model: ModelFixture;
let server: Server;
let backend: Backend;
let root: string;
const processes: EngineProcess[] = [];

before(async () => {
  [model, root] = await Promise.all([
    trainFixtureModel({ features: 10, name: "history_restart" }),
    mkdtemp(join(tmpdir(), "history-engine-")),
  ]);
  backend = { origin: "", alerts: [], verdicts: [], silences: [] };
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => {
      body += chunk;
    });
    req.on("end", () => {
      const path = (req.url ?? "").split("?")[0];
      const as_of = new Date().toISOString();
      const json = (status: number, value: unknown) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(value));
      };
      if (req.method === "POST") {
        backend.alerts.push(JSON.parse(body));
        json(201, {});
      } else if (path === "/api/v1/silences/effective")
        json(200, { as_of, silences: backend.silences });
      else if (path === "/api/v1/verdicts") json(200, { as_of, verdicts: backend.verdicts });
      else json(404, {});
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  backend.origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

after(async () => {
  for (const p of processes) await p.kill("SIGKILL");
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  await model?.remove();
  if (root) await rm(root, { recursive: true, force: true });
});

/** Starts an engine process on `dataDir` and waits until it is ready. */
async function engine(dataDir: string, env: Record<string, string>) {
  const p = spawnEngine("node", {
    MODEL_DIR: model.dir,
    DEFAULT_MODEL_NAME: model.name,
    DEFAULT_DEVICE: "cpu",
    NESTJS_URL: backend.origin,
    DATA_DIR: dataDir,
    DECISIONS_POLL_S: "1",
    RETRY_BASE_MS: "5",
    RETRY_MAX_MS: "50",
    ...env,
  });
  processes.push(p);
  const port = await p.port();
  await waitReady(port);
  return { process: p, port };
}

/** Posts one frame of `stream` at `at` (normal, or spiked on 3 sensors). */
async function post(port: number, stream: string, at: number, spiked: boolean, step: number) {
  const values = spiked ? model.spikedFrame(step, 3) : model.normalFrame(step);
  const res = await fetch(`http://127.0.0.1:${port}/data-enqueue`, {
    method: "POST",
    body: jsonFrame(model.featureNames, values, { stream_id: stream, timestamp: at }),
  });
  await res.arrayBuffer();
  assert.equal(res.status, 202);
}

/** Stops an engine gracefully (its recorder writes what it may) and waits for it. */
async function stop(p: EngineProcess) {
  p.child.kill("SIGTERM");
  assert.equal(await p.exited, 0);
}

/**
 * Plays `kinds` (`n` normal, `s` spiked) on stream `inc` at a frame a second from `from`
 * through one engine, then another started on the same DATA_DIR plays `after`; returns the
 * history read back and the alerts' incidents.
 */
async function acrossRestart(name: string, env: Record<string, string>, kinds: string[]) {
  const dataDir = join(root, name);
  const t0 = Math.floor(Date.now() / SECOND) * SECOND - 3600 * SECOND;
  let t = 0;
  for (const [i, part] of kinds.entries()) {
    const { process: p, port } = await engine(dataDir, env);
    for (const k of part) {
      await post(port, "inc", t0 + t * SECOND, k === "s", t);
      t++;
    }
    // The last part's incident resolves before the engine stops.
    if (i === kinds.length - 1) {
      await waitFor(() => backend.alerts.some((a) => a.event === "resolved"), "the resolved alert");
    }
    await stop(p);
  }
  const dir = join(dataDir, "history", model.name);
  const read = await readHistory(dir, { model: model.name, featureNames: model.featureNames });
  const incidents = new Set(backend.alerts.map((a) => a.incident_id));
  return { dataDir, dir, read, incidents };
}

test("an engine restarted in the middle of an incident tags its frames with the alert's incident: a false alarm lets them all back in", async () => {
  backend.alerts.length = 0;
  const env = { HISTORY_EVERY_N: "1", HISTORY_RUN_FRAMES: "120", INCIDENT_QUIET_WINDOWS: "3" };
  const { dataDir, dir, read, incidents } = await acrossRestart("false_alarm", env, [
    `${"n".repeat(10)}${"s".repeat(10)}`,
    `${"s".repeat(10)}${"n".repeat(15)}`,
  ]);
  assert.equal(incidents.size, 1, "one incident alerted, opened before the restart");
  const [alerted] = incidents;
  const tagged = new Set(read.frames.filter((f) => f.incident).map((f) => f.incident));
  assert.deepEqual([...tagged], [alerted], "every tagged frame names the alerted incident");
  assert.deepEqual(Object.keys(read.index.incidents), [alerted]);
  assert.ok(
    read.frames.filter((f) => f.incident).length >= 20,
    "frames before and after the restart tagged",
  );

  // Operators judge it a false alarm: an engine running now writes the verdict into the index.
  backend.verdicts = [
    {
      incident_id: alerted,
      stream_id: "inc",
      verdict: "false_positive",
      at: new Date().toISOString(),
    },
  ];
  const { process: p, port } = await engine(dataDir, env);
  // It scores another stream meanwhile (verdicts_at_start.test.ts: the same with nothing scored).
  const t = Math.floor(Date.now() / SECOND) * SECOND - 1800 * SECOND;
  for (let i = 0; i < 6; i++) await post(port, "other", t + i * SECOND, false, i);
  await waitFor(async () => {
    const index = JSON.parse(await readFile(join(dir, "index.json"), "utf8")) as HistoryIndex;
    return index.incidents[alerted]?.verdict === "false_positive";
  }, "the verdict in index.json");
  await stop(p);
  backend.verdicts = [];
  const judged = await readHistory(dir, { model: model.name, featureNames: model.featureNames });
  assert.deepEqual(
    judged.frames.filter((f) => !frameUse(f, judged.index).use).map((f) => f.timestamp),
    [],
    "every recorded frame is usable",
  );
});

test("an engine restarted inside a confirmed incident (6 of 6 to confirm, 30 quiet to resolve) records no frame inside it clean", async () => {
  backend.alerts.length = 0;
  const env = {
    HISTORY_EVERY_N: "1",
    HISTORY_RUN_FRAMES: "120",
    INCIDENT_CONFIRM_K: "6",
    INCIDENT_CONFIRM_N: "6",
    INCIDENT_QUIET_WINDOWS: "30",
  };
  // A spike of 2 frames (6 flagged windows) opens it; sporadic spikes keep it open across the
  // restart, where a fresh tracker would never see 6 flagged windows in a row.
  const { read, incidents } = await acrossRestart("confirmed", env, [
    `${"n".repeat(10)}ss${"nnnnnnnnns".repeat(2)}`,
    `${"snnnnnnnnn".repeat(5)}${"n".repeat(40)}`,
  ]);
  assert.equal(incidents.size, 1);
  const [alerted] = incidents;
  const opened = backend.alerts.find((a) => a.event === "opened")!;
  const resolved = backend.alerts.find((a) => a.event === "resolved")!;
  const from = Date.parse(opened.incident_started_at);
  const to = Date.parse(resolved.frame_timestamp);
  const inside = read.frames.filter((f) => f.timestamp >= from && f.timestamp <= to);
  assert.ok(inside.length > 60, `${inside.length} frames recorded inside the incident`);
  assert.deepEqual(
    inside.filter((f: HistoryFrame) => f.incident !== alerted).map((f) => f.timestamp),
    [],
    "every frame inside it is tagged with the alerted incident",
  );
});

test("an engine's kept runs follow stream time across machine stops and a restart", async () => {
  // One run of 120 s in every 2, machines running 60 s and silent 20 s (a stop: 20 s is more
  // than INCIDENT_STALE_MS and 10 steps), 3 cycles, the engine restarted after the second.
  // Runs counted from each start kept only each start's first minute (phase 0) or nothing.
  const env = {
    HISTORY_EVERY_N: "2",
    HISTORY_RUN_FRAMES: "120",
    INCIDENT_STALE_MS: "5000",
  };
  const RUN = 120 * SECOND;
  const t0 = Math.floor((Date.now() - 3 * 3600 * SECOND) / (2 * RUN)) * 2 * RUN;
  const streams = ["m-0", "m-1", "m-2", "m-3"];
  assert.ok(new Set(streams.map((s) => runPhase(s, 2))).size === 2, "streams of both phases");
  const at = (cycle: number, i: number) => t0 + (cycle * 80 + i) * SECOND;
  const dataDir = join(root, "cycles");
  let step = 0;
  const engines = [[0, 1], [2]];
  for (const cycles of engines) {
    const { process: p, port } = await engine(dataDir, env);
    for (const cycle of cycles) {
      for (let i = 0; i < 60; i++) {
        // Streams side by side, each one's frames in order.
        await Promise.all(streams.map((s) => post(port, s, at(cycle, i), false, step++)));
      }
    }
    await stop(p);
  }
  const read = await readHistory(join(dataDir, "history", model.name), {
    model: model.name,
    featureNames: model.featureNames,
  });
  for (const stream of streams) {
    const phase = runPhase(stream, 2);
    const kept = (ts: number) => (Math.floor(ts / RUN) + phase) % 2 === 0;
    // Scored: a window from each on-period's 5th frame. Not recorded: the first 5 windows after
    // each engine start (the stream's interval is measured), and the 4 frames each engine still
    // held at its stop (their windows' membership unknown).
    const expected: number[] = [];
    for (const cycles of engines) {
      for (const cycle of cycles) {
        for (let i = 4; i < 60; i++) {
          if (cycle === cycles[0] && i < 9) continue;
          if (cycle === cycles.at(-1) && i >= 56) continue;
          if (kept(at(cycle, i))) expected.push(at(cycle, i));
        }
      }
    }
    const recorded = read.frames.filter((f) => f.streamId === stream);
    assert.deepEqual(
      recorded.map((f) => (f.timestamp - t0) / SECOND),
      expected.map((ts) => (ts - t0) / SECOND),
      `${stream} (phase ${phase})`,
    );
    assert.ok(recorded.length > 0);
    // Frames either side of a stop are not one run for the reader.
    for (let i = 1; i < recorded.length; i++) {
      const [a, b] = [recorded[i - 1], recorded[i]];
      if (a.session === b.session && a.seq + 1 === b.seq) {
        assert.equal(b.timestamp - a.timestamp, SECOND, `${stream}: adjacent frames a step apart`);
      }
    }
  }
});

test("a silence created with a past starts_at keeps the frames it covers, recorded before, out of training", async () => {
  const dataDir = join(root, "past_silence");
  const env = { HISTORY_EVERY_N: "1", HISTORY_RUN_FRAMES: "120" };
  const { process: p, port } = await engine(dataDir, env);
  const t0 = Math.floor(Date.now() / SECOND) * SECOND - 7200 * SECOND;
  for (let i = 0; i < 40; i++) await post(port, "line", t0 + i * SECOND, false, i);
  const dir = join(dataDir, "history", model.name);
  await waitFor(async () => {
    const read = await readHistory(dir, { model: model.name, featureNames: model.featureNames });
    return read.frames.length >= 30;
  }, "the frames recorded");
  // Someone marks the cleaning that ran from frame 10 to 20, two hours ago.
  const silenceId = crypto.randomUUID();
  backend.silences = [
    {
      silence_id: silenceId,
      matchers: { stream: "line", sensors: [] },
      starts_at: new Date(t0 + 10 * SECOND).toISOString(),
      ends_at: new Date(t0 + 20 * SECOND).toISOString(),
      recurrence: null,
      reason: "cleaning, marked afterwards",
      created_by: "ops",
      created_at: new Date().toISOString(),
      expired_at: null,
      expired_by: null,
      expired_reason: null,
      state: "expired",
    },
  ];
  try {
    await waitFor(async () => {
      const text = await readFile(join(dir, "index.json"), "utf8").catch(() => "{}");
      return Boolean((JSON.parse(text) as HistoryIndex).silences?.[silenceId]);
    }, "the silence in index.json");
    await stop(p);
    const read = await readHistory(dir, { model: model.name, featureNames: model.featureNames });
    const left = read.frames
      .filter((f) => !frameUse(f, read.index).use)
      .map((f) => (f.timestamp - t0) / SECOND);
    assert.deepEqual(left, [10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    assert.ok(
      read.frames.some((f) => f.timestamp - t0 < 10 * SECOND && frameUse(f, read.index).use),
      "frames before it stay usable",
    );
  } finally {
    backend.silences = [];
  }
});
