// A producer replaying frames the engine took before a restart neither ends nor re-opens the incident still going on (real engine processes, real alert receiver).
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { type AlertSink, alertsOf, startAlertSink } from "./_test/alert_sink.ts";
import { jsonFrame } from "./_test/engine_harness.ts";
import { restartedEngines } from "./_test/restarted_engines.ts";
import { waitFor } from "./_test/wait_for.ts";
import { incidentStateDir } from "./alert/incident_state_store.ts";

const SECOND = 1000;
const T0 = Date.UTC(2026, 10, 24, 9);
/** Frames of the stream, one a second: 0..4 normal, 5..29 spiked, 30..39 normal. */
const SPIKE_FROM = 5;
const SPIKE_TO = 30;
const FRAMES = 40;
/** Frames taken before the restart (0..19): the incident, open since frame 5, goes on. */
const BEFORE_RESTART = 20;
/** The replay after the restart: frames 1..19, so its first window (frames 1..5) is frame 5's. */
const REPLAY_FROM = 1;
/** Frames per window of the fixture model. */
const WINDOW = 5;
/** Quiet windows that resolve an incident. */
const QUIET = 3;

let sink: AlertSink;
const suite = restartedEngines({
  modelName: "press",
  alertsTo: () => sink.origin,
  env: {
    DEFAULT_DEVICE: "cpu",
    RETRY_BASE_MS: "5",
    RETRY_MAX_MS: "50",
    INCIDENT_QUIET_WINDOWS: String(QUIET),
  },
});
const { engineOn } = suite;

before(async () => {
  sink = await startAlertSink();
});

after(async () => {
  await sink?.close();
});

/** The frame bodies of `stream`, byte for byte the same however often they are sent. */
function bodies(stream: string): string[] {
  return Array.from({ length: FRAMES }, (_, i) =>
    jsonFrame(
      suite.model.featureNames,
      i >= SPIKE_FROM && i < SPIKE_TO ? suite.model.spikedFrame(i, 3) : suite.model.normalFrame(i),
      { stream_id: stream, timestamp: T0 + i * SECOND },
    ),
  );
}

/** Posts `frames` to the engine on `port`; each must be taken (202). */
async function send(port: number, frames: string[]): Promise<void> {
  for (const body of frames) {
    const res = await fetch(`http://127.0.0.1:${port}/data-enqueue`, { method: "POST", body });
    assert.equal(res.status, 202, await res.text());
  }
}

// biome-ignore lint/suspicious/noExplicitAny: the /stats JSON as the test reads it
async function stats(port: number): Promise<any> {
  return (await fetch(`http://127.0.0.1:${port}/stats`)).json();
}

/**
 * Opens an incident on `stream` with a first engine, stops it with `signal` once the incident's
 * state is saved with its last window, restarts on the same DATA_DIR, replays frames 1..19 and
 * sends the rest of the upset and quiet frames. Returns the alerts and the second engine's logs.
 */
async function replayAcrossRestart(stream: string, signal: "SIGTERM" | "SIGKILL") {
  const dataDir = suite.dataDir(stream);
  const frames = bodies(stream);
  const first = await engineOn(dataDir);
  await send(first.port, frames.slice(0, BEFORE_RESTART));
  await waitFor(() => alertsOf(sink, stream).length === 1, "the opened alert");
  // The state of the last window taken is saved (at once with an event, else within a second).
  const file = join(incidentStateDir(dataDir, suite.model.name), `${stream}.json`);
  await waitFor(
    async () => {
      const saved = await readFile(file, "utf8").then(JSON.parse, () => undefined);
      return saved?.snapshot?.last === T0 + (BEFORE_RESTART - 1) * SECOND;
    },
    "the incident's state saved with its last window",
    10_000,
  );
  first.engine.child.kill(signal);
  await first.engine.exited;

  const second = await engineOn(dataDir);
  // The engine's frame order starts afresh: every replayed frame is taken again.
  await send(second.port, frames.slice(REPLAY_FROM, BEFORE_RESTART));
  // The upset goes on after the replay, then ends.
  await send(second.port, frames.slice(BEFORE_RESTART));
  const windows = FRAMES - REPLAY_FROM - (WINDOW - 1);
  // Every window scored, the stream's state deleted (its incident resolved, that alert in the
  // outbox) and the outbox empty (every alert delivered).
  await waitFor(
    async () => {
      const s = await stats(second.port);
      const gone = await readFile(file).then(
        () => false,
        () => true,
      );
      return s.frames.scored === windows && gone && s.alerts.outbox === 0;
    },
    "every window scored, the incident resolved and every alert delivered",
    20_000,
  );
  return { alerts: alertsOf(sink, stream), logs: second.engine.logs() };
}

/** One `opened` at the upset's start and one `resolved` once it ended, nothing in between. */
function assertOneIncident(
  alerts: ReturnType<typeof alertsOf>,
  // biome-ignore lint/suspicious/noExplicitAny: log lines as the tests read them
  logs: Record<string, any>[],
) {
  assert.deepEqual(
    alerts.map((a) => a.event),
    ["opened", "resolved"],
    "one opened, one resolved",
  );
  const [opened, resolved] = alerts;
  assert.equal(resolved.incident_id, opened.incident_id);
  assert.equal(opened.incident_started_at, new Date(T0 + SPIKE_FROM * SECOND).toISOString());
  // The last spiked frame leaves the window after frame 33; windows 34, 35 and 36 are quiet.
  const quietLast = SPIKE_TO - 1 + WINDOW - 1 + QUIET;
  assert.equal(
    resolved.frame_timestamp,
    new Date(T0 + quietLast * SECOND).toISOString(),
    "resolved after the upset ended, not at the restart",
  );
  assert.deepEqual(
    logs.filter((l) => String(l.msg).startsWith("restored incident resolved")),
    [],
    "the restored incident is not ended by the replay",
  );
  assert.equal(
    logs.filter((l) => String(l.msg).startsWith("restored stream re-read")).length,
    1,
    "the replay taken as re-reads, said once",
  );
}

test("engine restarted with SIGTERM takes a producer's replay of frames it had taken as re-reads: the incident goes on and resolves once, after the upset", async () => {
  const { alerts, logs } = await replayAcrossRestart("replay-term", "SIGTERM");
  assertOneIncident(alerts, logs);
});

test("engine killed (SIGKILL) and restarted takes a producer's replay of frames it had taken as re-reads: the incident goes on and resolves once, after the upset", async () => {
  const { alerts, logs } = await replayAcrossRestart("replay-kill", "SIGKILL");
  assertOneIncident(alerts, logs);
});
