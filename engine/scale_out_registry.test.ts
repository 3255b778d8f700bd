// The model registry under scale-out: a version activated and rolled back under load, one ingest replica and two workers (real processes, private nats-server).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { connect } from "@nats-io/transport-node";
import { type AlertSink, startAlertSink } from "./_test/alert_sink.ts";
import { jsonFrame } from "./_test/engine_harness.ts";
import { type EngineProcess, spawnEngine, waitReady } from "./_test/engine_process.ts";
import { type ModelFixture, trainFixtureModel } from "./_test/model_fixture.ts";
import { waitFor } from "./_test/wait_for.ts";
import { type NatsServer, startNatsServer } from "./bus/_test/nats_server.ts";
import { NatsModelRegistry } from "./infer/nats_registry.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const NAME = "reg_fixture";
const STREAM = "REG";
const BASE_TS = Date.UTC(2026, 2, 1);
const ADMIN = "admin-token-0123456789";

let server: NatsServer;
let sink: AlertSink;
let v1: ModelFixture;
let v1Version = "";
let windowSize = 0;
const processes: EngineProcess[] = [];
const temp: string[] = [];

before(async () => {
  [server, sink, v1] = await Promise.all([
    startNatsServer(),
    startAlertSink(),
    trainFixtureModel({ features: 12, name: NAME }),
  ]);
  const meta = JSON.parse(await readFile(join(v1.dir, `${NAME}.json`), "utf8"));
  v1Version = meta.version;
  windowSize = meta.window_size;
});

after(async () => {
  for (const p of processes) await p.kill("SIGKILL");
  await server?.remove();
  await sink?.close();
  await v1?.remove();
  for (const dir of temp) await rm(dir, { recursive: true, force: true });
});

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  temp.push(dir);
  return dir;
}

function spawnRole(role: "ingest" | "worker", env: Record<string, string> = {}): EngineProcess {
  const p = spawnEngine("node", {
    ENGINE_ROLE: role,
    FRAME_BUS: "nats",
    NATS_URL: server.url,
    NATS_STREAM: STREAM,
    NATS_PARTITIONS: "8",
    NATS_LEASE_MS: "3000",
    MODEL_DIR: v1.dir,
    DEFAULT_MODEL_NAME: NAME,
    DEFAULT_DEVICE: "cpu",
    NESTJS_URL: sink.origin,
    RETRY_BASE_MS: "5",
    RETRY_MAX_MS: "40",
    INGEST_WORKERS: "0",
    ADMIN_TOKEN: ADMIN,
    // One alert per window: every window position shows at the sink.
    ALERT_MODE: "frame",
    // "batch scored" lines say which frames each worker scored, with which version.
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

function activate(port: number, name: string, body: unknown): Promise<Response> {
  return fetch(`http://127.0.0.1:${port}/models/${name}/activate`, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

/** `npm run train`'s CLI; resolves with its stderr, rejects when it exits non-zero. */
function trainCli(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "models/train/cli.ts", ...args], {
      cwd: ROOT,
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
    });
    child.on("error", reject);
    child.on("exit", (code) =>
      code === 0 ? resolve(stderr) : reject(new Error(`train exited ${code}: ${stderr}`)),
    );
  });
}

test("scale-out: a version activated and rolled back under load, across two workers: every window once, by the version in force", async () => {
  const ingest = spawnRole("ingest");
  const workers = [
    spawnRole("worker", { NATS_WORKER_ID: "reg-a", DATA_DIR: await tempDir("reg-worker-") }),
    spawnRole("worker", { NATS_WORKER_ID: "reg-b", DATA_DIR: await tempDir("reg-worker-") }),
  ];
  const [port, ...workerPorts] = await Promise.all([ingest, ...workers].map(ready));
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

  // A retrained version (same sensors, more history) published by the training CLI: not active.
  const out = await tempDir("reg-train-");
  const said = await trainCli([
    ...["--input", join(v1.dir, "normal.csv"), "--model", NAME, "--out", out],
    ...["--seed", "2", "--publish", server.url, "--nats-stream", STREAM],
  ]);
  assert.match(said, /published to REG_models; not active there/);
  const listed = (await getJson(port, "/models")).models[0];
  assert.equal(listed.active_version, v1Version);
  assert.equal(listed.versions.length, 2);
  const v2Version = listed.versions.find((v: string) => v !== v1Version);
  assert.ok(v2Version, "the retrained version is another version");

  // Frames flow without pause while the version is activated, then rolled back.
  const streams = ["reg-a", "reg-b", "reg-c", "reg-d"];
  // At least this many frames per stream, more while a step is under way.
  const minimum = 60;
  const statuses: number[] = [];
  /**
   * Per frame i, the versions that may be in force for it: from the last step answered before it
   * was sent to the last step asked for before it was answered (one version when none was under way).
   */
  const sentAfter: number[] = [];
  const answeredBefore: number[] = [];
  let answered = 0;
  let requested = 0;
  const steps = [
    { at: 15, version: v2Version as string, by: "ops-alice", reason: "retrained" },
    { at: 38, version: v1Version, by: "ops-bob", reason: "roll back" },
  ];
  const switches: Promise<void>[] = [];
  // A step that failed ends the flow at once with its own error.
  let failed: unknown;
  // Frames flow until both steps are answered: bounded in time (a loaded 2-core host may take a
  // while to load a version), not in frames, which a fast host sends by the hundred a second.
  const flowUntil = Date.now() + 90_000;
  let count = 0;
  for (let i = 0; i < minimum || answered < steps.length; i++) {
    if (failed) throw failed;
    assert.ok(Date.now() < flowUntil, "the activations were answered while frames flowed");
    count = i + 1;
    // A step is asked for once its frame is reached and the previous step was answered.
    const step = steps[requested];
    if (step && i >= step.at && answered === requested) {
      requested++;
      switches.push(
        activate(port, NAME, { version: step.version, by: step.by, reason: step.reason })
          .then(async (res) => {
            const body = await res.json();
            assert.equal(res.status, 200, JSON.stringify(body));
            assert.equal(body.version, step.version);
            // Every worker follows the pointer and loads it (the answer waits for that up to a
            // lease period; a loaded 2-core host may take longer).
            for (const p of workerPorts) {
              await waitFor(
                async () =>
                  (await getJson(p, "/stats")).model.loaded_versions.includes(step.version),
                `worker on port ${p} to load ${step.version}`,
                30_000,
                50,
              );
            }
            answered++;
          })
          .catch((error) => {
            failed ??= error;
          }),
      );
    }
    sentAfter[i] = answered;
    // About 40 frames a second per stream: a flow, not a flood of alerts to wait for later.
    const paced = sleep(25);
    const results = await Promise.all(
      streams.map((s) =>
        fetch(`http://127.0.0.1:${port}/data-enqueue`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: jsonFrame(v1.featureNames, v1.spikedFrame(i, 10), {
            stream_id: s,
            timestamp: BASE_TS + i * 1000,
          }),
        }),
      ),
    );
    for (const r of results) {
      statuses.push(r.status);
      await r.body?.cancel();
    }
    answeredBefore[i] = requested;
    await paced;
  }
  await Promise.all(switches);
  if (failed) throw failed;
  assert.deepEqual(
    statuses.filter((s) => s !== 202),
    [],
    "every frame answered 202 through both switches",
  );

  // Every window position once: one stored alert each, none twice under two versions.
  const positions = streams.length * (count - windowSize + 1);
  const stored = () =>
    new Map(
      sink.requests
        .map((r) => JSON.parse(r.body))
        .filter((a) => streams.includes(a.stream_id) && sink.delivered.has(a.alert_id))
        .map((a) => [a.alert_id, a]),
    );
  await waitFor(() => stored().size >= positions, "an alert for every window position", 60_000, 50);
  const byPosition = new Map<string, string[]>();
  for (const alert of stored().values()) {
    const key = `${alert.stream_id}@${Date.parse(alert.frame_timestamp)}`;
    byPosition.set(key, [...(byPosition.get(key) ?? []), alert.model_version]);
  }
  assert.equal(byPosition.size, positions, "no window lost");
  const versions = [v1Version, v2Version, v1Version];
  for (const s of streams) {
    let phase = 0;
    for (let i = windowSize - 1; i < count; i++) {
      const names = byPosition.get(`${s}@${BASE_TS + i * 1000}`);
      assert.equal(names?.length, 1, `${s}@${i}: ${names}`);
      const version = (names as string[])[0];
      const inForce = versions.slice(sentAfter[i], answeredBefore[i] + 1);
      assert.ok(inForce.includes(version), `${s}@${i}: ${version}, in force ${inForce}`);
      // Per stream the versions go v1 → v2 → v1, once each.
      while (phase < versions.length && versions[phase] !== version) phase++;
      assert.ok(phase < versions.length, `${s}@${i}: ${version} out of order`);
    }
  }

  // The workers scored each window once, with the version the alert names.
  const scored = new Map<string, string[]>();
  for (const w of workers) {
    for (const line of w.logs().filter((l) => l.msg === "batch scored")) {
      for (const f of line.frames as { stream_id: string; timestamp: string }[]) {
        if (!streams.includes(f.stream_id)) continue;
        const key = `${f.stream_id}@${Date.parse(f.timestamp)}`;
        scored.set(key, [...(scored.get(key) ?? []), line.model_version]);
      }
    }
  }
  assert.equal(scored.size, positions);
  for (const [key, names] of scored) assert.deepEqual(names, byPosition.get(key), key);
  for (const p of workerPorts) {
    const model = (await getJson(p, "/stats")).model;
    assert.equal(model.active_version, v1Version);
  }

  // Who switched, when, from what to what, kept in the shared registry.
  const nc = await connect({ servers: server.url });
  try {
    const history = await (await NatsModelRegistry.open(nc, STREAM)).activations(NAME);
    assert.deepEqual(
      history.map((h) => [h.from, h.version, h.by, h.reason]),
      [
        [null, v1Version, history[0].by, `first version, from ${v1.dir}`],
        [v1Version, v2Version, "ops-alice", "retrained"],
        [v2Version, v1Version, "ops-bob", "roll back"],
      ],
    );
  } finally {
    await nc.close();
  }
  const last = (await getJson(port, "/models")).models[0].activation;
  assert.deepEqual([last.from, last.version, last.by], [v2Version, v1Version, "ops-bob"]);
});

test("scale-out activation refuses what workers cannot switch to, and changes nothing", async () => {
  const ingest = spawnRole("ingest");
  const port = await ready(ingest);
  const before = (await getJson(port, "/models")).models[0];
  // Other sensors: published by the CLI from its own folder, but not a live switch.
  const narrow = await trainFixtureModel({ features: 8, name: NAME, frames: 200 });
  try {
    const version = JSON.parse(await readFile(join(narrow.dir, `${NAME}.json`), "utf8")).version;
    await trainCli([
      ...["--model", NAME, "--out", narrow.dir, "--version", version],
      ...["--publish", server.url, "--nats-stream", STREAM],
    ]);
    const refusals: [unknown, number, string][] = [
      [{ version, reset_windows: true }, 409, "model_incompatible"],
      [{ version: "0.0.1+nothing" }, 404, "version_not_found"],
      [{ version: "../x" }, 400, "invalid_request"],
      [{ version: v1Version, extra: 1 }, 400, "invalid_request"],
    ];
    for (const [body, status, error] of refusals) {
      const res = await activate(port, NAME, body);
      assert.equal(res.status, status, JSON.stringify(body));
      assert.equal((await res.json()).error, error);
    }
    const wrongModel = await activate(port, "other", { version: v1Version });
    assert.equal(wrongModel.status, 404);
    const noToken = await fetch(`http://127.0.0.1:${port}/models/${NAME}/activate`, {
      method: "POST",
      body: JSON.stringify({ version: v1Version }),
    });
    assert.equal(noToken.status, 401);
    const after = (await getJson(port, "/models")).models[0];
    assert.equal(after.active_version, before.active_version);
    assert.deepEqual(after.activation, before.activation);
    assert.equal(after.versions.length, before.versions.length + 1);
  } finally {
    await narrow.remove();
  }
});
