// MODEL_ROUTES under scale-out: two models with different sensor lists, one ingest replica and two workers (real processes, private nats-server), one model's version activated while frames flow.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { connect } from "@nats-io/transport-node";
import { type ModelMetadata, parseModelMetadata } from "../contracts/model.ts";
import { type AlertSink, startAlertSink } from "./_test/alert_sink.ts";
import { jsonFrame } from "./_test/engine_harness.ts";
import { type EngineProcess, spawnEngine, waitReady } from "./_test/engine_process.ts";
import { type ModelFixture, trainFixtureModel } from "./_test/model_fixture.ts";
import { waitFor } from "./_test/wait_for.ts";
import { type NatsServer, startNatsServer } from "./bus/_test/nats_server.ts";
import { partitionOf } from "./bus/partition_of.ts";
import { NatsModelRegistry } from "./infer/nats_registry.ts";
import { ModelRegistry } from "./infer/registry.ts";

const STREAM = "ROUTES";
const BASE_TS = Date.UTC(2026, 3, 1);
const ADMIN = "admin-token-0123456789";
// A boiler (12 sensors, the default model) and a packaging line (9 sensors) for `line-b-*`.
const ROUTES = "line-b-*=packaging";

let server: NatsServer;
let sink: AlertSink;
let boiler: ModelFixture;
let packaging: ModelFixture;
let packaging2: ModelFixture;
const metas: Record<"boiler" | "packaging" | "packaging2", ModelMetadata> = {} as never;
let modelDir = "";
const processes: EngineProcess[] = [];
const temp: string[] = [];

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  temp.push(dir);
  return dir;
}

before(async () => {
  [server, sink, boiler, packaging, packaging2] = await Promise.all([
    startNatsServer(),
    startAlertSink(),
    trainFixtureModel({ features: 12, name: "boiler", frames: 300 }),
    trainFixtureModel({ features: 9, name: "packaging", frames: 300 }),
    // The packaging line retrained on more history: same sensors, another version.
    trainFixtureModel({ features: 9, name: "packaging", frames: 360 }),
  ]);
  // MODEL_DIR seeds the shared registry with each model's active version.
  modelDir = await tempDir("routes-models-");
  const registry = new ModelRegistry(modelDir);
  for (const [key, f] of [
    ["boiler", boiler],
    ["packaging", packaging],
    ["packaging2", packaging2],
  ] as const) {
    const onnx = await readFile(join(f.dir, `${f.name}.onnx`));
    const meta = parseModelMetadata(
      JSON.parse(await readFile(join(f.dir, `${f.name}.json`), "utf8")),
    );
    await registry.write(onnx, meta, { activate: key !== "packaging2" });
    metas[key] = meta;
  }
  assert.notEqual(metas.packaging.version, metas.packaging2.version);
});

after(async () => {
  for (const p of processes) await p.kill("SIGKILL");
  await server?.remove();
  await sink?.close();
  await Promise.all([boiler, packaging, packaging2].map((f) => f?.remove()));
  for (const dir of temp) await rm(dir, { recursive: true, force: true });
});

function spawnRole(role: "ingest" | "worker", env: Record<string, string> = {}): EngineProcess {
  const p = spawnEngine("node", {
    ENGINE_ROLE: role,
    FRAME_BUS: "nats",
    NATS_URL: server.url,
    NATS_STREAM: STREAM,
    NATS_PARTITIONS: "8",
    NATS_LEASE_MS: "3000",
    MODEL_DIR: modelDir,
    DEFAULT_MODEL_NAME: "boiler",
    MODEL_ROUTES: ROUTES,
    DEFAULT_DEVICE: "cpu",
    NESTJS_URL: sink.origin,
    RETRY_BASE_MS: "5",
    RETRY_MAX_MS: "40",
    INGEST_WORKERS: "0",
    ADMIN_TOKEN: ADMIN,
    // One alert per window: every window position shows at the sink.
    ALERT_MODE: "frame",
    // "batch scored" lines say which frames each worker scored, with which model and version.
    LOG_LEVEL: "debug",
    ...env,
  });
  processes.push(p);
  return p;
}

async function ready(p: EngineProcess): Promise<number> {
  const port = await p.port();
  await waitReady(port);
  return port;
}

// biome-ignore lint/suspicious/noExplicitAny: JSON answers as the roles serve them
async function getJson(port: number, path: string): Promise<any> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    headers: { authorization: `Bearer ${ADMIN}` },
  });
  return res.json();
}

test("scale-out with MODEL_ROUTES: each stream scored by its model, every window once, one model's version switched alone", async () => {
  const ingest = spawnRole("ingest");
  const workers = [
    spawnRole("worker", { NATS_WORKER_ID: "routes-a", DATA_DIR: await tempDir("routes-w-") }),
    spawnRole("worker", { NATS_WORKER_ID: "routes-b", DATA_DIR: await tempDir("routes-w-") }),
  ];
  const [port, ...workerPorts] = await Promise.all([ingest, ...workers].map(ready));

  // Ready means every routed model is loaded, on every role.
  for (const p of workerPorts) {
    const models = (await getJson(p, "/stats")).models as {
      name: string;
      active_version: string;
    }[];
    assert.deepEqual(
      models.map((m) => [m.name, m.active_version]),
      [
        ["boiler", metas.boiler.version],
        ["packaging", metas.packaging.version],
      ],
    );
  }
  const listed = (await getJson(port, "/models")).models as Record<string, unknown>[];
  assert.deepEqual(
    listed.map((m) => [m.name, m.active_version, m.n_features, m.routes]),
    [
      ["boiler", metas.boiler.version, 12, ["*"]],
      ["packaging", metas.packaging.version, 9, ["line-b-*"]],
    ],
  );
  await waitFor(
    async () => {
      const held = await Promise.all(
        workerPorts.map(async (p) => (await getJson(p, "/stats")).worker.partitions.length),
      );
      return held.every((n) => n > 0) && held[0] + held[1] === 8;
    },
    "both workers to hold partitions",
    30_000,
  );

  // The retrained packaging version, published to the shared registry, not active.
  const nc = await connect({ servers: server.url });
  try {
    const shared = await NatsModelRegistry.open(nc, STREAM);
    const ref = await new ModelRegistry(modelDir).resolve("packaging", metas.packaging2.version);
    const published = await shared.publishFromDisk(ref, { by: "test" });
    assert.equal(published.activated, undefined);
  } finally {
    await nc.close();
  }

  const fixtureOf = (s: string) => (s.startsWith("line-b-") ? packaging : boiler);
  const modelOf = (s: string) => (s.startsWith("line-b-") ? "packaging" : "boiler");
  // Partitions 2, 6 and 7 (of 8) each hold a boiler and a packaging stream (partitionOf).
  const streams = ["boiler-1", "line-b-5", "boiler-5", "line-b-1", "boiler-2", "line-b-6"];
  assert.deepEqual(
    streams.map((s) => partitionOf(s, 8)),
    [2, 2, 6, 6, 7, 7],
  );
  const minimum = 40;
  const statuses: number[] = [];
  // Per frame i, whether the activation had been answered before it was sent, and asked for
  // before it was answered: between the two, either packaging version may score it.
  const sentAfter: boolean[] = [];
  const askedBefore: boolean[] = [];
  let asked = false;
  let answered = false;
  let switched: Promise<void> | undefined;
  let count = 0;
  // Frames flow until the activation is answered: a bound in time, not in frames, since on a
  // loaded machine both workers' loading the version takes hundreds of rounds of frames.
  const giveUpAt = Date.now() + 180_000;
  for (let i = 0; i < minimum || !answered; i++) {
    assert.ok(Date.now() < giveUpAt, "the activation was answered while frames flowed");
    count = i + 1;
    if (i === 15) {
      asked = true;
      switched = fetch(`http://127.0.0.1:${port}/models/packaging/activate`, {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
        body: JSON.stringify({ version: metas.packaging2.version, by: "ops-carol" }),
      }).then(async (res) => {
        const body = await res.json();
        assert.equal(res.status, 200, JSON.stringify(body));
        assert.deepEqual(
          [body.model, body.version, body.from, body.windows_reset],
          ["packaging", metas.packaging2.version, metas.packaging.version, false],
        );
        answered = true;
      });
    }
    sentAfter[i] = answered;
    const results = await Promise.all(
      streams.map((s) => {
        const f = fixtureOf(s);
        // Spiked: every window is anomalous, so every window position has an alert.
        return fetch(`http://127.0.0.1:${port}/data-enqueue`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: jsonFrame(f.featureNames, f.spikedFrame(i, 5), {
            stream_id: s,
            timestamp: BASE_TS + i * 1000,
          }),
        });
      }),
    );
    for (const r of results) {
      statuses.push(r.status);
      await r.body?.cancel();
    }
    askedBefore[i] = asked;
  }
  await switched;
  assert.deepEqual(
    statuses.filter((s) => s !== 202),
    [],
    "every frame answered 202 through the switch",
  );

  // A frame of the other asset is refused, naming the stream's model; nothing is published.
  for (const [stream, f, model] of [
    ["line-b-9", boiler, /stream "line-b-9" is scored by model "packaging" \(9 features\)/],
    ["boiler-9", packaging, /model "boiler"/],
  ] as const) {
    const res = await fetch(`http://127.0.0.1:${port}/data-enqueue`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: jsonFrame(f.featureNames, f.normalFrame(0), { stream_id: stream, timestamp: BASE_TS }),
    });
    const body = (await res.json()) as { error: string; message: string };
    assert.equal(res.status, 422, JSON.stringify(body));
    assert.match(body.message, model);
  }

  // Every window position once: one stored alert each, by its stream's model.
  const W = metas.boiler.window_size;
  assert.equal(metas.packaging.window_size, W);
  const positions = streams.length * (count - W + 1);
  const stored = () =>
    new Map(
      sink.requests
        .map((r) => JSON.parse(r.body))
        .filter((a) => sink.delivered.has(a.alert_id))
        .map((a) => [a.alert_id, a]),
    );
  await waitFor(() => stored().size >= positions, "an alert for every window position", 60_000, 50);
  const byPosition = new Map<string, [string, string][]>();
  for (const alert of stored().values()) {
    const key = `${alert.stream_id}@${Date.parse(alert.frame_timestamp)}`;
    byPosition.set(key, [...(byPosition.get(key) ?? []), [alert.model_name, alert.model_version]]);
  }
  assert.equal(byPosition.size, positions, "no window lost, none of a refused frame");
  for (const s of streams) {
    let switchedAt = Number.POSITIVE_INFINITY;
    for (let i = W - 1; i < count; i++) {
      const named = byPosition.get(`${s}@${BASE_TS + i * 1000}`);
      assert.equal(named?.length, 1, `${s}@${i}: ${named}`);
      const [model, version] = (named as [string, string][])[0];
      assert.equal(model, modelOf(s), `${s}@${i}`);
      if (model === "boiler") {
        assert.equal(version, metas.boiler.version, `${s}@${i}: the boiler never switched`);
        continue;
      }
      const inForce = [
        ...(sentAfter[i] ? [] : [metas.packaging.version]),
        ...(askedBefore[i] ? [metas.packaging2.version] : []),
      ];
      assert.ok(inForce.includes(version), `${s}@${i}: ${version}, in force ${inForce}`);
      // Per stream the packaging versions go old → new, once.
      if (version === metas.packaging2.version) switchedAt = Math.min(switchedAt, i);
      else assert.ok(i < switchedAt, `${s}@${i}: the old version after the new one`);
    }
    if (modelOf(s) === "packaging") assert.ok(switchedAt < count, `${s} switched`);
  }

  // The workers scored each window once, in batches of one model, with the model the alert names.
  const scored = new Map<string, [string, string][]>();
  const perWorker: string[][] = [];
  for (const w of workers) {
    const models = new Set<string>();
    for (const line of w.logs().filter((l) => l.msg === "batch scored")) {
      models.add(line.model);
      for (const f of line.frames as { stream_id: string; timestamp: string }[]) {
        assert.equal(modelOf(f.stream_id), line.model, `a ${line.model} batch held ${f.stream_id}`);
        const key = `${f.stream_id}@${Date.parse(f.timestamp)}`;
        scored.set(key, [...(scored.get(key) ?? []), [line.model, line.model_version]]);
      }
    }
    perWorker.push([...models].sort());
  }
  assert.deepEqual(
    perWorker,
    [
      ["boiler", "packaging"],
      ["boiler", "packaging"],
    ],
    "each worker scored both models' windows",
  );
  assert.equal(scored.size, positions);
  for (const [key, named] of scored) assert.deepEqual(named, byPosition.get(key), key);

  // Only the packaging model moved, on every role; each worker counts each model's windows.
  const scoredBy = { boiler: 0, packaging: 0 };
  for (const p of workerPorts) {
    const models = (await getJson(p, "/stats")).models as {
      name: "boiler" | "packaging";
      active_version: string;
      frames: { scored: number };
      latency_ms: { count: number };
    }[];
    assert.deepEqual(
      models.map((m) => [m.name, m.active_version]),
      [
        ["boiler", metas.boiler.version],
        ["packaging", metas.packaging2.version],
      ],
    );
    for (const m of models) {
      assert.equal(m.latency_ms.count, m.frames.scored, m.name);
      scoredBy[m.name] += m.frames.scored;
    }
  }
  // Three streams each; a window scored twice (a replay) would count twice.
  assert.deepEqual(scoredBy, { boiler: positions / 2, packaging: positions / 2 });
  const after = (await getJson(port, "/models")).models as Record<string, unknown>[];
  assert.deepEqual(
    after.map((m) => [m.name, m.active_version, m.live_streams]),
    [
      ["boiler", metas.boiler.version, 3],
      ["packaging", metas.packaging2.version, 3],
    ],
  );
  const activation = after[1].activation as { from: string; version: string; by: string };
  assert.deepEqual(
    [activation.from, activation.version, activation.by],
    [metas.packaging.version, metas.packaging2.version, "ops-carol"],
  );
  assert.equal((after[0].activation as { from: unknown }).from, null, "the boiler's first version");
});

test("scale-out activation of a routed model refuses another model's version and an unknown model, changing nothing", async () => {
  const ingest = spawnRole("ingest");
  const port = await ready(ingest);
  const before = (await getJson(port, "/models")).models;
  const activate = (name: string, body: unknown) =>
    fetch(`http://127.0.0.1:${port}/models/${name}/activate`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  const refusals: [string, unknown, number, string][] = [
    // The boiler has no version of the packaging line's.
    ["boiler", { version: metas.packaging.version }, 404, "version_not_found"],
    ["compressor", { version: metas.boiler.version }, 404, "model_not_found"],
  ];
  for (const [name, body, status, error] of refusals) {
    const res = await activate(name, body);
    assert.equal(res.status, status, `${name} ${JSON.stringify(body)}`);
    assert.equal((await res.json()).error, error);
  }
  assert.deepEqual((await getJson(port, "/models")).models, before);
});
