// A client that goes mid-upload is answered as a bad request, not logged as the backend's error; one that stalls is answered 408 at BODY_TIMEOUT_MS.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { type ServerType, serve } from "@hono/node-server";
import { tokenDigest } from "../contracts/auth.ts";
import { createLogger } from "../telemetry/logger.ts";
import { freePort } from "./_test/free_port.ts";
import { ourAlert, post } from "./alerts/_fixtures.ts";
import { createBackendApp } from "./app.ts";
import { createAuth } from "./auth/auth.ts";
import { openTokenStore } from "./auth/token_store.ts";
import { type TestDatabase, testTargets } from "./db/_test_databases.ts";

const OPERATOR = "olga-token-0123456789";

let server: ServerType;
let port: number;
/** The same backend with a short BODY_TIMEOUT_MS. */
let strict: ServerType;
let strictPort: number;
let db: TestDatabase;
let dir: string;
const lines: { level: string; msg: string }[] = [];

before(async () => {
  db = await testTargets()[0].open();
  const log = createLogger({
    service: "backend",
    level: "debug",
    write: (line) => void lines.push(JSON.parse(line)),
  });
  // Token sign-in, as a plant runs it: the operator routes read their body after the token check.
  dir = await mkdtemp(join(tmpdir(), "body-incomplete-"));
  const file = join(dir, "tokens.json");
  const sha256 = await tokenDigest(OPERATOR);
  await writeFile(file, JSON.stringify([{ name: "olga", role: "operator", sha256 }]));
  const tokens = await openTokenStore({ path: file, checkEveryMs: 0 });
  const auth = createAuth({ mode: "token", tokens });
  const listen = async (app: { fetch: (r: Request) => Response | Promise<Response> }) => {
    const at = await freePort();
    const running = await new Promise<ServerType>((resolve) => {
      const s = serve({ fetch: app.fetch, port: at, hostname: "127.0.0.1" }, () => resolve(s));
    });
    return [running, at] as const;
  };
  [server, port] = await listen(createBackendApp({ database: db, log, auth }));
  [strict, strictPort] = await listen(
    createBackendApp({ database: db, log, auth, bodyTimeoutMs: 300 }),
  );
});

after(async () => {
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  await new Promise((resolve) => (strict ? strict.close(resolve) : resolve(undefined)));
  await db?.dispose();
  await rm(dir, { recursive: true, force: true });
});

/** Sends the headers of a POST to `path` and part of its body, then closes the connection. */
async function leaveMidUpload(path: string): Promise<void> {
  const socket = new Socket();
  socket.on("error", () => {});
  await new Promise<void>((resolve) => socket.connect(port, "127.0.0.1", resolve));
  const head =
    `POST ${path} HTTP/1.1\r\nHost: backend\r\nauthorization: Bearer ${OPERATOR}\r\n` +
    "content-type: application/json\r\ncontent-length: 4000\r\n\r\n";
  await new Promise<void>((resolve) => socket.write(`${head}{"matchers":`, () => resolve()));
  // Long enough for the request to reach its body read.
  await new Promise((resolve) => setTimeout(resolve, 300));
  socket.destroy();
}

test("an upload the client leaves halfway logs no error, and the next request is served", async () => {
  for (const path of ["/api/v1/silences", "/api/v1/alert", "/api/v1/incidents/x/verdict"]) {
    await leaveMidUpload(path);
  }
  // The aborted reads end on the server after the sockets close.
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.deepEqual(
    lines.filter((l) => l.level === "error"),
    [],
    "a client gone mid-upload is not the backend's error",
  );
  const stored = await fetch(`http://127.0.0.1:${port}/api/v1/alert`, post(ourAlert()));
  assert.equal(stored.status, 201);
});

// Bounded: without the deadline the answer would only come at Node's five-minute limit.
test("an upload that stalls is answered 408 request_timeout at BODY_TIMEOUT_MS, an API request and a console form alike", {
  timeout: 30_000,
}, async () => {
  for (const [path, type] of [
    ["/api/v1/silences", "application/json"],
    ["/api/v1/alert", "application/json"],
    ["/silences", "application/x-www-form-urlencoded"],
  ]) {
    const socket = new Socket();
    socket.on("error", () => {});
    let answer = "";
    const answered = new Promise<void>((resolve) =>
      socket.on("data", (chunk) => {
        answer += chunk;
        if (answer.includes("\r\n\r\n")) resolve();
      }),
    );
    socket.connect(strictPort, "127.0.0.1");
    socket.write(
      `POST ${path} HTTP/1.1\r\nHost: backend\r\nauthorization: Bearer ${OPERATOR}\r\n` +
        `content-type: ${type}\r\ncontent-length: 4000\r\n\r\n{"matchers":`,
    );
    // Nothing more is sent: the backend answers, the client never finishes.
    await answered;
    socket.destroy();
    assert.match(answer, /^HTTP\/1\.1 408 /, `${path}: ${answer.slice(0, 200)}`);
  }
  assert.deepEqual(
    lines.filter((l) => l.level === "error"),
    [],
  );
});
