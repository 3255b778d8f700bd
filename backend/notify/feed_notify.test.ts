// Feed conditions reach the routes: a stream gone silent, the engine out of reach, each opened and ended once per route, a silence holding a stream's back (real backend and engine processes, a real receiver).
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { jsonFrame } from "../../engine/_test/engine_harness.ts";
import { type EngineProcess, spawnEngine, waitReady } from "../../engine/_test/engine_process.ts";
import { type ModelFixture, trainFixtureModel } from "../../engine/_test/model_fixture.ts";
import { freePort } from "../_test/free_port.ts";
import { NODE_TS, type ServiceProcess, spawnService, waitFor } from "../_test/spawn_service.ts";
import { post } from "../alerts/_fixtures.ts";
import { type Received, type Receiver, startReceiver } from "./_test_receiver.ts";

const SECOND = 1000;
const T0 = Math.floor(Date.now() / SECOND) * SECOND - 3600 * SECOND;

let dir: string;
let model: ModelFixture;
let receiver: Receiver;
let backend: ServiceProcess | undefined;
const engines: EngineProcess[] = [];
let enginePort: number;
let backendPort: number;

/** A frame of `stream` at step `n` (its stream time goes on from T0). */
async function send(stream: string, n: number) {
  const body = jsonFrame(model.featureNames, model.normalFrame(n), {
    stream_id: stream,
    timestamp: T0 + n * SECOND,
  });
  const res = await fetch(`http://127.0.0.1:${enginePort}/data-enqueue`, { method: "POST", body });
  assert.equal(res.status, 202, await res.text());
}

async function startEngine(): Promise<EngineProcess> {
  const engine = spawnEngine("node", {
    MODEL_DIR: model.dir,
    DEFAULT_MODEL_NAME: model.name,
    NESTJS_URL: `http://127.0.0.1:${backendPort}`,
    DATA_DIR: join(dir, "engine"),
    APP_PORT: String(enginePort),
    INCIDENT_STALE_MS: "1000",
  });
  engines.push(engine);
  await waitReady(await engine.port());
  return engine;
}

before(async () => {
  [dir, model, receiver, enginePort, backendPort] = await Promise.all([
    mkdtemp(join(tmpdir(), "feed-notify-")),
    trainFixtureModel({ features: 12, name: "kiln" }),
    startReceiver(),
    freePort(),
    freePort(),
  ]);
  const config = join(dir, "notify.json");
  await writeFile(
    config,
    JSON.stringify({
      console_url: "https://anomaly.plant.example",
      routes: [
        // Feed conditions only, of the lines.
        {
          name: "feed",
          match: { kind: "feed", stream: "line-*" },
          webhook: { url: `${receiver.url}/feed` },
        },
        // Everything, to Slack.
        { name: "chat", webhook: { url: `${receiver.url}/chat`, format: "slack" } },
        // Anomalies of some severity only: never a condition.
        { name: "pager", match: { min_severity: 5 }, webhook: { url: `${receiver.url}/pager` } },
        // Another plant's streams: not these lines' conditions, but the engine's.
        { name: "other", match: { stream: "press-*" }, webhook: { url: `${receiver.url}/other` } },
      ],
    }),
  );
  await startEngine();
  backend = spawnService([...NODE_TS, "backend/main.ts"], {
    DATABASE_URL: "",
    PGLITE_DATA_DIR: join(dir, "pglite"),
    HOST: "127.0.0.1",
    PORT: String(backendPort),
    ENGINE_URL: `http://127.0.0.1:${enginePort}`,
    NOTIFY_CONFIG: config,
    FEED_WATCH_MS: "200",
    FEED_GRACE_MS: "1000",
  });
  await backend.waitForLog((l) => l.msg === "backend listening", 90_000);
});

after(async () => {
  await backend?.stop("SIGTERM");
  for (const e of engines) await e.kill("SIGKILL");
  await receiver?.close();
  await model?.remove();
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface ConditionBody {
  type: string;
  data: {
    event_id: string;
    text: string;
    url?: string;
    condition: { kind: string; stream_id: string | null; state: string; since: string };
  };
}

const json = (r: Received) => JSON.parse(r.body) as ConditionBody;
/** The JSON messages at `path` about a condition of `kind` on `stream` (null: the engine). */
const about = (path: string, kind: string, stream: string | null) =>
  receiver.on(path).filter((r) => {
    const c = json(r).data.condition;
    return c.kind === kind && c.stream_id === stream;
  });
/** How many Slack messages of route `chat` say `words`. */
const slack = (words: string) =>
  receiver.on("/chat").filter((r) => (JSON.parse(r.body) as { text: string }).text.includes(words))
    .length;
/** Waits until `heard` holds for what the receiver got. */
const until = (heard: () => boolean, what: string) => receiver.until(heard, what, 15_000);

test("a stream gone silent is told to the routes it matches once, its end once, under stable webhook-ids; a route asking for severity hears nothing", async () => {
  await send("line-1", 0);
  await send("line-1", 1);
  const line1 = () => about("/feed", "stream_silent", "line-1");
  await until(
    () => line1().length === 1 && slack("Stream line-1 is silent") === 1,
    "the silence of line-1 at both routes",
  );
  const body = json(line1()[0]);
  assert.equal(body.type, "condition.opened");
  assert.equal(body.data.condition.state, "open");
  assert.equal(body.data.url, "https://anomaly.plant.example/");
  assert.match(body.data.text, /^Stream line-1 is silent: no frame accepted since /);
  // The stream sends again: its end, once, to both.
  await send("line-1", 2);
  await until(
    () => line1().length === 2 && slack("Stream line-1 is sending again") === 1,
    "line-1's end at both routes",
  );
  const ended = json(line1()[1]);
  assert.equal(ended.type, "condition.resolved");
  assert.equal(ended.data.condition.state, "resolved");
  assert.equal(ended.data.condition.since, body.data.condition.since);
  assert.notEqual(ended.data.event_id, body.data.event_id);
  assert.equal(receiver.on("/pager").length, 0);
  assert.equal(about("/other", "stream_silent", "line-1").length, 0);
});

test("a silence over a stream holds its page back while it holds; a line still silent when it is expired is told then", async () => {
  const base = `http://127.0.0.1:${backendPort}`;
  const created = await fetch(
    `${base}/api/v1/silences`,
    post({
      matchers: { stream: "line-2" },
      ends_at: new Date(Date.now() + 3_600_000).toISOString(),
      reason: "planned stop of line 2",
      created_by: "Ana",
    }),
  );
  const text = await created.text();
  assert.equal(created.status, 201, text);
  const { silence } = JSON.parse(text) as { silence: { silence_id: string } };
  await send("line-2", 0);
  await send("line-2", 1);
  await backend!.waitForLog(
    (l) => l.msg === "feed condition opened" && l.subject === "line-2",
    15_000,
  );
  // line-3, outside the silence, goes silent after line-2's condition was recorded: the pass of
  // the dispatcher that tells line-3's reads line-2's too (every open condition, each pass), so
  // once line-3's page is in, line-2's would be as well, were the silence not holding it.
  await send("line-3", 0);
  await send("line-3", 1);
  await until(() => about("/feed", "stream_silent", "line-3").length === 1, "line-3 told");
  assert.equal(about("/feed", "stream_silent", "line-2").length, 0);
  const expired = await fetch(
    `${base}/api/v1/silences/${silence.silence_id}?by=Ana&reason=line+2+should+run+by+now`,
    { method: "DELETE" },
  );
  assert.equal(expired.status, 200, await expired.text());
  await until(
    () => about("/feed", "stream_silent", "line-2").length === 1,
    "line-2's silence told once the silence is expired",
  );
});

test("the engine out of reach is told to every route without a severity minimum, its return once; a restart keeps what it knew of silent streams", async () => {
  const line2 = () => about("/feed", "stream_silent", "line-2");
  const before = line2().length;
  // The engine keeps what it has seen every few seconds: killed once line-2 is kept (a kill
  // -9 sooner forgets the streams of the last few seconds, README).
  await waitFor(async () => {
    const kept = await readFile(join(dir, "engine", "streams_seen.json"), "utf8").catch(() => "");
    return kept.includes('"line-2"') ? true : undefined;
  }, "line-2 kept by the engine");
  const engine = engines.at(-1)!;
  engine.child.kill("SIGKILL");
  await engine.exited;
  /** Whether routes `feed` and `other` have `n` messages about the engine, `chat` `words`. */
  const engineTold = (n: number, words: string) =>
    ["/feed", "/other"].every((path) => about(path, "engine_unreachable", null).length === n) &&
    slack(words) === 1;
  await until(() => engineTold(1, "is out of reach"), "the engine out of reach at every route");
  const down = json(about("/feed", "engine_unreachable", null)[0]);
  assert.equal(down.type, "condition.opened");
  assert.equal(down.data.url, "https://anomaly.plant.example/status");
  assert.equal(receiver.on("/pager").length, 0);
  await startEngine();
  await until(() => engineTold(2, "is reachable again"), "the engine's return at every route");
  // line-2 went silent before the kill; the restarted engine still lists it with its own last
  // frame time, so the read that found the engine back (it also read the silent streams) ended
  // no stream's episode and opened none.
  assert.equal(line2().length, before, "line-2 is still the same silent episode");
  const logs = backend!.lines.flatMap((line) => {
    try {
      return [JSON.parse(line) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
  const back = logs.findIndex(
    (l) => l.msg === "feed condition ended" && l.kind === "engine_unreachable",
  );
  assert.ok(back >= 0);
  assert.ok(
    !logs
      .slice(back)
      .some((l) => String(l.msg).startsWith("feed condition") && l.kind === "stream_silent"),
    "no silent stream's episode ended or opened after the restart",
  );
  assert.equal(receiver.on("/pager").length, 0);
});
