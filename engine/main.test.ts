import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { copyFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { type AddressInfo, createServer, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { type AlertSink, startAlertSink } from "./_test/alert_sink.ts";
import { gzip, jsonFrame } from "./_test/engine_harness.ts";
import { spawnEngine, waitReady } from "./_test/engine_process.ts";
import { heldUpload } from "./_test/held_upload.ts";
import { type ModelFixture, trainFixtureModel } from "./_test/model_fixture.ts";
import { waitFor } from "./_test/wait_for.ts";

let model: ModelFixture;
let sink: AlertSink;
let dataDir: string;

before(async () => {
  model = await trainFixtureModel({ features: 300, name: "boot" });
  sink = await startAlertSink();
  dataDir = await mkdtemp(join(tmpdir(), "engine-main-"));
});
after(async () => {
  await sink?.close();
  await model?.remove();
  await rm(dataDir, { recursive: true, force: true });
});

const env = (extra: Record<string, string> = {}) => ({
  MODEL_DIR: model.dir,
  DEFAULT_MODEL_NAME: model.name,
  NESTJS_URL: sink.origin,
  DATA_DIR: join(dataDir, crypto.randomUUID()),
  RETRY_BASE_MS: "5",
  RETRY_MAX_MS: "50",
  // Long: a busy host's slow answer is no timeout and retry (a second request for the alert).
  ALERT_TIMEOUT_MS: "5000",
  ...extra,
});

const post = (port: number, body: BodyInit, headers: Record<string, string> = {}) =>
  fetch(`http://127.0.0.1:${port}/data-enqueue`, { method: "POST", body, headers });

const stats = async (port: number) => (await fetch(`http://127.0.0.1:${port}/stats`)).json();

/**
 * Starts an upload on `port` that never ends: its headers, then 100 bytes every 100 ms of a
 * 100,000-byte body, once another request was answered (so the upload's headers were read).
 * `stop()` ends the trickle and the connection.
 */
async function trickleUpload(port: number): Promise<{ stop(): void }> {
  const socket = new Socket();
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.connect(port, "127.0.0.1", resolve);
  });
  socket.on("error", () => {}); // cut by the engine: that is the point
  socket.write(
    "POST /data-enqueue HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n",
  );
  const trickle = setInterval(() => socket.write("x".repeat(100)), 100);
  await stats(port);
  return {
    stop() {
      clearInterval(trickle);
      socket.destroy();
    },
  };
}

test("engine process stops with a clear message when a variable is invalid", async () => {
  const engine = spawnEngine("node", env({ MAX_RETRIES: "9" }));
  assert.equal(await engine.exited, 1);
  assert.match(engine.output(), /'MAX_RETRIES' must be an integer 1\.\.5, got "9"/);
});

test("engine process exits non-zero saying its port is in use", async () => {
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
  try {
    const port = (taken.address() as AddressInfo).port;
    const engine = spawnEngine("node", env({ APP_PORT: String(port) }));
    assert.equal(await engine.exited, 1);
    assert.ok(
      engine
        .output()
        .includes(`engine: cannot listen on 127.0.0.1:${port}: address in use (set APP_PORT)`),
      engine.output(),
    );
    assert.doesNotMatch(engine.output(), /\n\s+at /, "no stack trace");
  } finally {
    taken.close();
  }
});

test("engine process exits non-zero naming the model when it cannot load", async () => {
  const engine = spawnEngine("node", env({ DEFAULT_MODEL_NAME: "no_such_model" }));
  assert.equal(await engine.exited, 1);
  assert.match(
    engine.output(),
    /cannot load model no_such_model: no model "no_such_model" in .* \(neither no_such_model\.onnx \+ no_such_model\.json/,
  );
});

test("engine process that cannot load its model exits though a client keeps an upload going", async () => {
  // The metadata is a named pipe: the load waits on it until the test writes, so the failure
  // comes while the client's upload is in progress.
  const dir = await mkdtemp(join(tmpdir(), "engine-held-model-"));
  execFileSync("mkfifo", [join(dir, "held.json")]);
  await copyFile(join(model.dir, `${model.name}.onnx`), join(dir, "held.onnx"));
  const engine = spawnEngine("node", env({ MODEL_DIR: dir, DEFAULT_MODEL_NAME: "held" }));
  let upload: { stop(): void } | undefined;
  try {
    upload = await trickleUpload(await engine.port());
    await writeFile(join(dir, "held.json"), "not metadata");
    assert.equal(await engine.exited, 1);
    assert.match(engine.output(), /engine: cannot load model held: .* is not valid JSON/);
  } finally {
    upload?.stop();
    await engine.kill();
    await rm(dir, { recursive: true, force: true });
  }
});

test("engine process with DEFAULT_DEVICE=cuda fails loudly when CUDA is unavailable", async () => {
  const engine = spawnEngine("node", env({ DEFAULT_DEVICE: "cuda" }));
  assert.equal(await engine.exited, 1);
  assert.match(engine.output(), /DEFAULT_DEVICE=cuda but the CUDA execution provider failed/);
});

test("engine process stops cleanly on SIGHUP (the terminal that ran it closed), also when its output is gone", async () => {
  const engine = spawnEngine("node", env());
  const port = await engine.port();
  await waitReady(port);
  engine.child.kill("SIGHUP");
  assert.equal(await engine.exited, 0);
  assert.ok(engine.logs().some((l) => l.msg === "engine stopped"));
  // Its output closed first, as a terminal's is when it closes: writing "shutting down" fails.
  const dir = join(dataDir, crypto.randomUUID());
  const orphan = spawnEngine("node", env({ DATA_DIR: dir }));
  await waitReady(await orphan.port());
  orphan.child.stdout?.destroy();
  orphan.child.stderr?.destroy();
  orphan.child.kill("SIGHUP");
  assert.equal(await orphan.exited, 0, "drained and stopped, not ended by the failed write");
  assert.ok(!existsSync(join(dir, "alerts.lock")), "its outbox was closed");
});

test("engine process under Node scores accepted frames and exits 0 on SIGTERM", async () => {
  const engine = spawnEngine("node", env());
  try {
    const port = await engine.port();
    await waitReady(port);
    for (let i = 0; i < 6; i++) {
      const response = await post(port, gzip(jsonFrame(model.featureNames, model.normalFrame(i))));
      assert.equal(response.status, 202);
    }
    engine.child.kill("SIGTERM");
    assert.equal(await engine.exited, 0);
    const stopped = engine.logs().find((l) => l.msg === "engine stopped");
    assert.equal(stopped?.unscored_frames, 0);
    // At the default level: no line per batch, one summary (flushed at the stop).
    assert.equal(engine.logs().filter((l) => l.msg === "batch scored").length, 0);
    const summaries = engine.logs().filter((l) => l.msg === "scoring summary");
    assert.equal(
      summaries.reduce((n, l) => n + l.frames, 0),
      6,
    );
    assert.equal(
      summaries.reduce((n, l) => n + l.windows, 0),
      2,
      "six frames on one stream make two windows of five",
    );
  } finally {
    await engine.kill();
  }
});

test("a frame whose upload outlasts the shutdown's drain is refused 503 shutting_down, not taken and lost, a second signal notwithstanding", async () => {
  const engine = spawnEngine("node", env({ SHUTDOWN_TIMEOUT_MS: "300" }));
  try {
    const port = await engine.port();
    await waitReady(port);
    const body = gzip(jsonFrame(model.featureNames, model.normalFrame(0)));
    // Half the frame, then the rest once the engine has stopped scoring.
    const upload = heldUpload(port, body, {
      firstBytes: body.byteLength >> 1,
      headers: { "content-encoding": "gzip" },
    });
    const finished = waitFor(
      () => engine.logs().some((l) => l.msg === "engine stopped"),
      "the engine to stop",
    ).then(upload.finish);
    await upload.sent;
    await stats(port); // another request answered: the upload's headers were read before it
    engine.child.kill("SIGTERM");
    // The same signal again during the drain (a terminal's Ctrl-C reaches a process twice under
    // `deno task`, or a person presses it again) changes nothing: the drain goes on.
    await waitFor(() => engine.logs().some((l) => l.msg === "shutting down"), "the drain");
    engine.child.kill("SIGTERM");
    const [{ status, body: text }] = await Promise.all([upload.answer, finished]);
    assert.equal(status, 503, text);
    assert.equal(JSON.parse(text).error, "shutting_down");
    assert.equal(await engine.exited, 0);
    const stopped = engine.logs().find((l) => l.msg === "engine stopped");
    // An upload in flight holds no queue slot (it takes one once decoded): none was left unscored.
    assert.equal(stopped?.unscored_frames, 0);
    assert.equal(
      engine.logs().filter((l) => l.msg === "frame intake failed").length,
      0,
      "no error logged for a refused upload",
    );
  } finally {
    await engine.kill();
  }
});

for (const runtime of ["node", "deno"] as const) {
  test(`engine process under ${runtime} stops within its drain while a client trickles an upload that never ends`, async () => {
    const engine = spawnEngine(runtime, env({ SHUTDOWN_TIMEOUT_MS: "300" }));
    let upload: { stop(): void } | undefined;
    try {
      const port = await engine.port();
      await waitReady(port);
      upload = await trickleUpload(port);
      engine.child.kill("SIGTERM");
      assert.equal(await engine.exited, 0);
      assert.ok(
        !engine.logs().some((l) => l.msg === "shutdown overran its deadline; exiting"),
        "stopped within the drain",
      );
      assert.ok(engine.logs().some((l) => l.msg === "engine stopped"));
    } finally {
      upload?.stop();
      await engine.kill();
    }
  });
}

for (const runtime of ["node", "deno"] as const) {
  test(`engine process under ${runtime} logs no error for a client gone mid-upload, and goes on taking frames`, async () => {
    const engine = spawnEngine(runtime, env());
    try {
      const port = await engine.port();
      await waitReady(port);
      for (let i = 0; i < 3; i++) {
        const socket = new Socket();
        await new Promise<void>((resolve, reject) => {
          socket.once("error", reject);
          socket.connect(port, "127.0.0.1", resolve);
        });
        socket.on("error", () => {});
        socket.write(
          `POST /data-enqueue HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n${"x".repeat(5000)}`,
        );
        await new Promise((resolve) => setTimeout(resolve, 200));
        socket.resetAndDestroy();
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
      const response = await post(port, gzip(jsonFrame(model.featureNames, model.normalFrame(0))));
      assert.equal(response.status, 202, await response.text());
      const errors = engine.logs().filter((l) => l.level === "error" || l.level === "warn");
      assert.deepEqual(
        errors.map((l) => l.msg),
        [],
        JSON.stringify(errors).slice(0, 2000),
      );
    } finally {
      await engine.kill();
    }
  });
}

test("engine process redelivers every kept alert after a SIGKILL", async () => {
  sink.answer = 500;
  const dir = join(dataDir, "kill");
  // One alert per anomalous window: four windows hold the spikes, four alerts to keep.
  const first = spawnEngine("node", env({ DATA_DIR: dir, MAX_RETRIES: "1", ALERT_MODE: "frame" }));
  let ids: string[];
  try {
    const port = await first.port();
    await waitReady(port);
    for (let i = 0; i < 8; i++) {
      const values = i >= 4 ? model.spikedFrame(i, 3) : model.normalFrame(i);
      assert.equal((await post(port, jsonFrame(model.featureNames, values))).status, 202);
    }
    await waitFor(async () => (await stats(port)).alerts.generated === 4, "four alerts kept");
    first.child.kill("SIGKILL");
    await first.exited;
    const log = await readFile(join(dir, "alerts.log"), "utf8");
    ids = [
      ...new Set(
        log
          .trim()
          .split("\n")
          .map((l) => JSON.parse(l).id as string),
      ),
    ];
    assert.equal(ids.length, 4);
  } finally {
    await first.kill();
  }
  sink.answer = 201;
  const second = spawnEngine("node", env({ DATA_DIR: dir, ALERT_MODE: "frame" }));
  try {
    await waitFor(() => ids.every((id) => sink.delivered.has(id)), "every kept alert", 30_000);
  } finally {
    await second.kill();
  }
});

test("after a restart each kept incident alert is delivered once, not once from the outbox and again from the incident state", async () => {
  sink.answer = 500;
  const dir = join(dataDir, "restart-once");
  const first = spawnEngine("node", env({ DATA_DIR: dir, MAX_RETRIES: "1" }));
  try {
    const port = await first.port();
    await waitReady(port);
    for (let i = 0; i < 10; i++) {
      const values = i >= 4 ? model.spikedFrame(i, 3) : model.normalFrame(i);
      assert.equal((await post(port, jsonFrame(model.featureNames, values))).status, 202);
    }
    await waitFor(async () => (await stats(port)).alerts.generated > 0, "an incident's alert");
    first.child.kill("SIGTERM");
    assert.equal(await first.exited, 0);
    // At the default level the log says the incident, not each of its windows.
    const opened = first.logs().find((l) => l.msg === "incident opened");
    assert.equal(opened?.level, "info");
    assert.equal(typeof opened?.incident_id, "string");
    assert.equal(first.logs().filter((l) => l.msg === "anomalous windows").length, 0);
  } finally {
    await first.kill();
  }
  sink.answer = 201;
  const mark = sink.requests.length;
  const second = spawnEngine("node", env({ DATA_DIR: dir }));
  try {
    const port = await second.port();
    await waitReady(port);
    await waitFor(async () => (await stats(port)).alerts.outbox === 0, "the outbox delivered");
    second.child.kill("SIGTERM");
    assert.equal(await second.exited, 0);
  } finally {
    await second.kill();
  }
  const restored = second.logs().find((l) => l.msg === "incident state restored");
  assert.ok(restored?.alerts_resubmitted > 0, "the incident state kept its alerts");
  const ids = sink.requests.slice(mark).map((r) => JSON.parse(r.body).alert_id as string);
  assert.ok(ids.length > 0);
  assert.deepEqual(ids, [...new Set(ids)], "no alert delivered twice");
});

test("engine process boots under Deno, accepts a gzip frame, and says why an OTLP endpoint set without OTEL_DENO exports nothing", async () => {
  const engine = spawnEngine(
    "deno",
    env({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9", OTEL_DENO: "" }),
  );
  try {
    const port = await engine.port();
    await waitReady(port);
    const response = await post(port, gzip(jsonFrame(model.featureNames, model.normalFrame(0))), {
      "content-type": "application/x-www-form-urlencoded",
    });
    assert.equal(response.status, 202);
    assert.equal((await response.json()).status, "accepted");
    const off = engine.logs().find((l) => /^telemetry is off: under Deno/.test(l.msg));
    assert.deepEqual(off?.variables, ["OTEL_EXPORTER_OTLP_ENDPOINT"], engine.output());
    assert.equal(off?.level, "warn");
  } finally {
    await engine.kill();
  }
});

test("engine process under Deno stops once every request is answered, though a client keeps its refused upload's connection open", async () => {
  // A long drain: the stop must not wait for it when nothing is left to answer.
  const engine = spawnEngine("deno", env({ BODY_TIMEOUT_MS: "300", SHUTDOWN_TIMEOUT_MS: "60000" }));
  const socket = new Socket();
  try {
    const port = await engine.port();
    await waitReady(port);
    // Half an upload, then nothing: refused 408 body_timeout; the client never closes its side
    // (an HTTP client would, on the answer's `connection: close`; a stalled gateway does not).
    const answered = new Promise<string>((resolve) =>
      socket.on("data", (chunk) => resolve(String(chunk).split("\r\n")[0])),
    );
    socket.on("error", () => {});
    socket.connect(port, "127.0.0.1");
    socket.write(
      'POST /data-enqueue HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"data":',
    );
    assert.equal(await answered, "HTTP/1.1 408 Request Timeout");
    engine.child.kill("SIGTERM");
    const code = await Promise.race([
      engine.exited,
      new Promise((resolve) => setTimeout(() => resolve("still running"), 20_000).unref()),
    ]);
    assert.equal(code, 0, "the stop ended, not held until SHUTDOWN_TIMEOUT_MS");
    assert.ok(engine.logs().some((l) => l.msg === "engine stopped"));
  } finally {
    socket.destroy();
    await engine.kill();
  }
});
