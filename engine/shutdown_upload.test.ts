// An upload still arriving when the engine stops is answered 503 shutting_down, under Node and Deno, not cut with no answer (real processes, a raw socket).
import assert from "node:assert/strict";
import { Socket } from "node:net";
import { after, before, test } from "node:test";
import { gzip, jsonFrame } from "./_test/engine_harness.ts";
import { spawnEngine, waitReady } from "./_test/engine_process.ts";
import { type ModelFixture, trainFixtureModel } from "./_test/model_fixture.ts";
import { waitFor } from "./_test/wait_for.ts";

let model: ModelFixture;

before(async () => {
  model = await trainFixtureModel({ features: 12, name: "drain" });
});
after(async () => {
  await model?.remove();
});

for (const runtime of ["node", "deno"] as const) {
  test(`engine process under ${runtime} answers an upload in progress at the stop 503 shutting_down`, async () => {
    const engine = spawnEngine(runtime, {
      MODEL_DIR: model.dir,
      DEFAULT_MODEL_NAME: model.name,
      NESTJS_URL: "http://127.0.0.1:9",
      SHUTDOWN_TIMEOUT_MS: "8000",
    });
    const socket = new Socket();
    try {
      const port = await engine.port();
      await waitReady(port);
      const body = gzip(jsonFrame(model.featureNames, model.normalFrame(0)));
      let text = "";
      socket.on("data", (chunk) => {
        text += String(chunk);
      });
      const closed = new Promise((resolve) => socket.on("close", resolve));
      socket.on("error", () => {});
      await new Promise<void>((resolve) => socket.connect(port, "127.0.0.1", resolve));
      const half = Math.floor(body.length / 2);
      socket.write(
        `POST /data-enqueue HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
      );
      socket.write(body.subarray(0, half));
      // The upload's headers are read: another request on another connection is answered.
      assert.equal((await fetch(`http://127.0.0.1:${port}/stats`)).status, 200);
      engine.child.kill("SIGTERM");
      await waitFor(
        () => engine.logs().some((l) => l.msg === "shutting down"),
        "the stop to begin",
      );
      // The rest of the body (an engine may answer before it: Deno's does).
      socket.end(body.subarray(half));
      await closed;
      assert.match(text, /^HTTP\/1\.1 503 /, text.slice(0, 300));
      assert.match(text, /"error":"shutting_down"/);
      assert.equal(await engine.exited, 0);
    } finally {
      socket.destroy();
      await engine.kill();
    }
  });
}

// Node only: Deno.serve drops the answer to a client that half-closes (no switch for it).
for (const runtime of ["node"] as const) {
  test(`engine process under ${runtime} answers a producer that half-closes its connection once its upload is sent (202, not a cut connection)`, async () => {
    const engine = spawnEngine(runtime, {
      MODEL_DIR: model.dir,
      DEFAULT_MODEL_NAME: model.name,
      NESTJS_URL: "http://127.0.0.1:9",
    });
    try {
      const port = await engine.port();
      await waitReady(port);
      for (let i = 0; i < 5; i++) {
        const body = gzip(
          jsonFrame(model.featureNames, model.normalFrame(i), { stream_id: `half-${i}` }),
        );
        const socket = new Socket();
        let text = "";
        socket.on("data", (chunk) => {
          text += String(chunk);
        });
        const closed = new Promise((resolve) => socket.on("close", resolve));
        socket.on("error", () => {});
        await new Promise<void>((resolve) => socket.connect(port, "127.0.0.1", resolve));
        // The whole request, then the client's end of the connection (as `nc` or a gateway may).
        socket.end(
          Buffer.concat([
            Buffer.from(
              `POST /data-enqueue HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
            ),
            body,
          ]),
        );
        await closed;
        assert.match(text, /^HTTP\/1\.1 202 /, `upload ${i}: ${text.slice(0, 300)}`);
      }
    } finally {
      await engine.kill();
    }
  });
}
