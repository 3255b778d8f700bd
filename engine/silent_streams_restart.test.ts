// A line that went dark stays listed as silent after the engine is killed and restarted, and once more streams than MAX_STREAMS pushed it out (real engine processes, kill -9).
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { type AlertSink, startAlertSink } from "./_test/alert_sink.ts";
import { jsonFrame } from "./_test/engine_harness.ts";
import { restartedEngines } from "./_test/restarted_engines.ts";
import { waitFor } from "./_test/wait_for.ts";
import { SEEN_STREAMS_FILE } from "./window/seen_streams.ts";

const SECOND = 1000;
const T0 = Math.floor(Date.now() / SECOND) * SECOND - 3600 * SECOND;

let sink: AlertSink;
// Streams are silent after 1 s without a frame.
const suite = restartedEngines({
  modelName: "kiln",
  alertsTo: () => sink.origin,
  env: { INCIDENT_STALE_MS: "1000" },
});
const { engineOn } = suite;

before(async () => {
  sink = await startAlertSink();
});

after(async () => {
  await sink?.close();
});

async function send(port: number, streamId: string, n: number) {
  const body = jsonFrame(suite.model.featureNames, suite.model.normalFrame(n), {
    stream_id: streamId,
    timestamp: T0 + n * SECOND,
  });
  const res = await fetch(`http://127.0.0.1:${port}/data-enqueue`, { method: "POST", body });
  assert.equal(res.status, 202, await res.text());
}

type Silent = { stream_id: string; last_accepted_at: string }[];

async function silent(port: number): Promise<Silent> {
  const res = await fetch(`http://127.0.0.1:${port}/stats`);
  assert.equal(res.status, 200);
  return ((await res.json()) as { silent: Silent }).silent;
}

const ids = (list: Silent) => list.map((s) => s.stream_id).sort();

test("streams gone silent before a kill -9 are listed as silent by the next start, with their last frame's time, until they send again", async () => {
  const dataDir = suite.dataDir("restart");
  const first = await engineOn(dataDir);
  for (const n of [0, 1]) {
    await send(first.port, "line-dark", n);
    await send(first.port, "line-back", n);
  }
  const before = await waitFor(async () => {
    const list = await silent(first.port);
    return list.length === 2 ? list : undefined;
  }, "both streams silent");
  // Saved every few seconds: killed once the file holds them, never stopped cleanly.
  await waitFor(async () => {
    const text = await readFile(join(dataDir, SEEN_STREAMS_FILE), "utf8").catch(() => "");
    return text.includes("line-dark") && text.includes("line-back") ? true : undefined;
  }, "the streams seen saved");
  first.engine.child.kill("SIGKILL");
  await first.engine.exited;

  const second = await engineOn(dataDir);
  const after = await silent(second.port);
  assert.deepEqual(
    [...after].sort((a, b) => a.stream_id.localeCompare(b.stream_id)),
    [...before].sort((a, b) => a.stream_id.localeCompare(b.stream_id)),
    "the same streams, with the same last frame times",
  );
  await send(second.port, "line-back", 2);
  assert.deepEqual(
    ids(await silent(second.port)),
    ["line-dark"],
    "a stream that sends again is not silent",
  );
  // Its next silence is its own, from its new frame.
  const again = await waitFor(async () => {
    const list = await silent(second.port);
    return list.length === 2 ? list : undefined;
  }, "line-back silent again");
  const back = again.find((s) => s.stream_id === "line-back");
  assert.ok(back && Date.parse(back.last_accepted_at) > Date.parse(before[0].last_accepted_at));
});

test("a silent stream pushed out by new streams at MAX_STREAMS is still listed as silent", async () => {
  const dataDir = suite.dataDir("limit");
  const { port } = await engineOn(dataDir, { MAX_STREAMS: "2" });
  for (const n of [0, 1]) await send(port, "line-old", n);
  await waitFor(
    async () => ((await silent(port)).length === 1 ? true : undefined),
    "line-old silent",
  );
  // A stream gives its place up only after INCIDENT_STALE_MS of silence (5 min by default, 1 s
  // here), so a save (every few seconds) has seen it by then; here that is waited for.
  await waitFor(async () => {
    const text = await readFile(join(dataDir, SEEN_STREAMS_FILE), "utf8").catch(() => "");
    return text.includes("line-old") ? true : undefined;
  }, "line-old saved");
  // Two new streams take both places: line-old, silent for 1 s, gives its place up.
  for (const n of [0, 1]) {
    await send(port, "line-new-a", n);
    await send(port, "line-new-b", n);
  }
  const list = await silent(port);
  assert.ok(
    list.some((s) => s.stream_id === "line-old"),
    `line-old still listed: ${JSON.stringify(list)}`,
  );
});
