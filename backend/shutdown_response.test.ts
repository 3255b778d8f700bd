// A stop lets an answer still being written to a slow reader finish: a real backend under Node and Deno.
import assert from "node:assert/strict";
import { once } from "node:events";
import { Socket } from "node:net";
import { after, test } from "node:test";
import { DENO_TS, NODE_TS, type ServiceProcess, spawnService } from "./_test/spawn_service.ts";
import { ourAlert, post } from "./alerts/_fixtures.ts";

const running: ServiceProcess[] = [];
after(() => Promise.all(running.map((s) => s.stop("SIGKILL"))));

/** Alerts stored: with a thousand features each, the list below is several megabytes. */
const ALERTS = 150;
const FEATURES = 1000;

for (const [runtime, command] of [
  ["node", NODE_TS],
  ["deno", DENO_TS],
] as const) {
  test(`backend under ${runtime} writes out a large answer to a slow reader before it exits on SIGTERM`, async () => {
    const service = spawnService([...command, "backend/main.ts"], {
      PORT: "0",
      HOST: "127.0.0.1",
      DATABASE_URL: "",
      LOG_LEVEL: "info",
      // Longer than stop()'s 15 s grace: a stop held to its deadline fails the test.
      SHUTDOWN_TIMEOUT_MS: "60000",
      ENGINE_URL: "http://127.0.0.1:1",
    });
    running.push(service);
    const listening = await service.waitForLog((l) => l.msg === "backend listening", 90_000);
    const base = `http://127.0.0.1:${listening.port}`;
    const features = Array.from({ length: FEATURES }, (_, i) => ({
      feature_idx: i,
      score: 0.95,
      feature: `feature_${i}`,
    }));
    for (let i = 0; i < ALERTS; i++) {
      const alert = ourAlert({ num_anomalous_features: FEATURES, anomalous_features: features });
      const res = await fetch(`${base}/api/v1/alert`, post(alert));
      assert.equal(res.status, 201, await res.text());
    }

    // A raw client that reads the headers, then nothing until the backend is stopping, then
    // slowly: the answer is still being written when the stop begins.
    const socket = new Socket();
    socket.on("error", () => {});
    socket.connect(Number(listening.port), "127.0.0.1");
    await once(socket, "connect");
    socket.write(
      `GET /api/v1/alerts?limit=${ALERTS}&features=${FEATURES} HTTP/1.1\r\nHost: 127.0.0.1:${listening.port}\r\n\r\n`,
    );
    const chunks: Buffer[] = [];
    let received = 0;
    let stopping = false;
    const ended = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    const headersRead = new Promise<void>((resolve) =>
      socket.on("data", function slowRead(chunk: Buffer) {
        chunks.push(chunk);
        received += chunk.length;
        if (Buffer.concat(chunks).includes("\r\n\r\n")) resolve();
        socket.pause();
        if (stopping) setTimeout(() => socket.resume(), 2);
      }),
    );
    await headersRead;
    const head = Buffer.concat(chunks);
    const headEnd = head.indexOf("\r\n\r\n") + 4;
    const headers = head.subarray(0, headEnd).toString("latin1");
    assert.match(headers, /^HTTP\/1\.1 200 /);
    const length = Number(/\r\ncontent-length: (\d+)\r\n/i.exec(headers)?.[1]);
    assert.ok(length > 4_000_000, `a large answer: ${headers}`);

    const exited = service.stop("SIGTERM");
    await service.waitForLog((l) => l.msg === "backend stopping");
    assert.ok(received - headEnd < length, "the answer is still being written as the stop begins");
    stopping = true;
    socket.resume();
    // Read until the whole body came or the backend closed the connection.
    await Promise.race([
      ended,
      new Promise<void>((resolve) =>
        socket.on("data", () => received - headEnd >= length && resolve()),
      ),
    ]);
    const body = Buffer.concat(chunks).subarray(headEnd);
    assert.equal(body.length, length, "the whole body under its Content-Length");
    assert.equal(JSON.parse(body.toString("utf8")).alerts.length, ALERTS);
    assert.equal(await exited, 0);
    socket.destroy();
    assert.ok(
      service.lines.some((l) => l.includes('"backend stopped"')),
      service.lines.join("\n"),
    );
  });
}
