import assert from "node:assert/strict";
import { once } from "node:events";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { type AddressInfo, createServer, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { DENO_TS, NODE_TS, type ServiceProcess, spawnService } from "./_test/spawn_service.ts";
import { ourAlert, post } from "./alerts/_fixtures.ts";

const running: ServiceProcess[] = [];
after(() => Promise.all(running.map((s) => s.stop("SIGKILL"))));

for (const [runtime, command] of [
  ["node", NODE_TS],
  ["deno", DENO_TS],
] as const) {
  test(`backend boots under ${runtime}, stores an alert, serves the console and stops cleanly on SIGTERM`, async () => {
    const service = spawnService([...command, "backend/main.ts"], {
      PORT: "0",
      HOST: "127.0.0.1",
      DATABASE_URL: "",
      LOG_LEVEL: "info",
      // Longer than stop()'s 15 s grace: a live console stream that held the drain would fail.
      SHUTDOWN_TIMEOUT_MS: "60000",
      // No engine: the simulator's one frame below fails fast, which is all it needs to do.
      ENGINE_URL: "http://127.0.0.1:1",
    });
    running.push(service);
    const listening = await service.waitForLog((l) => l.msg === "backend listening", 90_000);
    assert.equal(listening.runtime, runtime);
    const base = `http://127.0.0.1:${listening.port}`;
    assert.equal((await fetch(`${base}/health/ready`)).status, 200);
    const alert = ourAlert();
    const res = await fetch(`${base}/api/v1/alert`, post(alert));
    assert.equal(res.status, 201);
    const stored = await (await fetch(`${base}/api/v1/alerts/${alert.alert_id}`)).json();
    assert.equal(stored.alert_id, alert.alert_id);
    // The console's pages (JSX), its files (uPlot resolved from node_modules) and its live
    // stream; an open stream must not hold the shutdown below.
    const page = await fetch(`${base}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<h1>Now<\/h1>/);
    const uplot = await fetch(`${base}/assets/uPlot.iife.min.js`);
    assert.equal(uplot.status, 200);
    assert.ok((await uplot.arrayBuffer()).byteLength > 10_000);
    const events = await fetch(`${base}/events`);
    const reader = events.body!.pipeThrough(new TextDecoderStream()).getReader();
    assert.match((await reader.read()).value ?? "", /event: ready/);
    // Both read request.signal, on which Deno 2.9 warns unless deno.json opts in to the new
    // behaviour (`unstable: ["no-legacy-abort"]`); a newcomer's run prints no warning.
    const send = await fetch(`${base}/data/send`, { method: "POST" });
    assert.ok(send.status >= 400, `no engine to take the frame: ${send.status}`);
    await send.body?.cancel();
    // An upload refused at its headers whose client goes on holding the connection (a stalled
    // gateway): answered, so it must not hold the stop either.
    const held = new Socket();
    held.on("error", () => {});
    const refused = new Promise<string>((resolve) =>
      held.on("data", (chunk) => resolve(String(chunk).split("\r\n")[0])),
    );
    held.connect(Number(listening.port), "127.0.0.1");
    held.write(
      "POST /api/v1/alert HTTP/1.1\r\nHost: backend\r\ncontent-type: text/plain\r\ncontent-length: 1000000\r\n\r\n{",
    );
    assert.match(await refused, /^HTTP\/1\.1 4\d\d /);
    assert.equal(await service.stop("SIGTERM"), 0);
    held.destroy();
    assert.deepEqual(
      service.lines.filter((l) => /legacy|unstable/i.test(l)),
      [],
      "no runtime warning",
    );
    assert.ok(
      service.lines.some((l) => l.includes('"backend stopped"')),
      service.lines.join("\n"),
    );
    await reader.cancel().catch(() => {});
  });
}

test("backend exits non-zero naming a bad configuration variable", async () => {
  const service = spawnService([...NODE_TS, "backend/main.ts"], { PORT: "70000" });
  running.push(service);
  const code = await new Promise<number | null>((resolve) => service.child.once("exit", resolve));
  assert.equal(code, 1);
  assert.ok(
    service.lines.some((l) => l.includes("'PORT'")),
    service.lines.join("\n"),
  );
});

test("backend exits non-zero on a signing secret that cannot sign, naming it", async () => {
  const service = spawnService([...NODE_TS, "backend/main.ts"], {
    PORT: "0",
    HOST: "127.0.0.1",
    DATABASE_URL: "",
    LOG_LEVEL: "info",
    ALERT_SIGNING_SECRET: "whsec_not base64 at all!!",
  });
  running.push(service);
  // A backend that took the secret would listen instead of exiting: that ends the wait too.
  const outcome = await Promise.race([
    exitCode(service),
    service.waitForLog((l) => l.msg === "backend listening", 90_000).then(() => "listening"),
  ]);
  assert.equal(outcome, 1, service.lines.join("\n"));
  assert.ok(
    service.lines.some((l) =>
      l.includes("'ALERT_SIGNING_SECRET' must be whsec_ followed by base64"),
    ),
    service.lines.join("\n"),
  );
});

const roots: string[] = [];
after(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

/** Resolves with the exit code of a service expected to stop on its own. */
const exitCode = (service: ServiceProcess) =>
  new Promise<number | null>((resolve) => {
    if (service.child.exitCode !== null) resolve(service.child.exitCode);
    else service.child.once("exit", resolve);
  });

test("backend creates a PGLITE_DATA_DIR whose parent folders do not exist yet", async () => {
  const root = mkdtempSync(join(tmpdir(), "backend-pglite-"));
  roots.push(root);
  const service = spawnService([...NODE_TS, "backend/main.ts"], {
    PORT: "0",
    HOST: "127.0.0.1",
    DATABASE_URL: "",
    LOG_LEVEL: "info",
    PGLITE_DATA_DIR: join(root, "fresh", "clone", "pglite"),
  });
  running.push(service);
  const listening = await service.waitForLog((l) => l.msg === "backend listening", 90_000);
  const ready = await fetch(`http://127.0.0.1:${listening.port}/health/ready`);
  assert.equal(ready.status, 200, "the database in the new folder answers");
  assert.equal(await service.stop("SIGTERM"), 0);
});

test("backend exits non-zero naming PGLITE_DATA_DIR when it cannot be opened", async () => {
  const root = mkdtempSync(join(tmpdir(), "backend-pglite-"));
  roots.push(root);
  writeFileSync(join(root, "a-file"), "");
  const dataDir = join(root, "a-file", "pglite");
  const service = spawnService([...NODE_TS, "backend/main.ts"], {
    PORT: "0",
    HOST: "127.0.0.1",
    DATABASE_URL: "",
    PGLITE_DATA_DIR: dataDir,
  });
  running.push(service);
  assert.equal(await exitCode(service), 1);
  const text = service.lines.join("\n");
  assert.ok(text.includes(`backend: PGLITE_DATA_DIR ${dataDir}: ENOTDIR`), text);
  assert.doesNotMatch(text, /\n\s+at /, "no stack trace");
});

test("a second backend on the same embedded database is refused while the first runs, and takes over once it was killed", {
  timeout: 240_000,
}, async () => {
  const root = mkdtempSync(join(tmpdir(), "backend-pglite-"));
  roots.push(root);
  const dataDir = join(root, "pglite");
  const env = { PORT: "0", HOST: "127.0.0.1", DATABASE_URL: "", PGLITE_DATA_DIR: dataDir };
  const first = spawnService([...NODE_TS, "backend/main.ts"], { ...env, LOG_LEVEL: "info" });
  running.push(first);
  await first.waitForLog((l) => l.msg === "backend listening", 90_000);
  const second = spawnService([...NODE_TS, "backend/main.ts"], env);
  running.push(second);
  assert.equal(await exitCode(second), 1);
  const text = second.lines.join("\n");
  assert.ok(
    text.includes(`backend: PGLITE_DATA_DIR ${dataDir}: in use by process ${first.child.pid}`),
    text,
  );
  assert.doesNotMatch(text, /backend listening|database ready/, "it never opened the database");
  // A lock left by a process killed with kill -9 is taken over.
  assert.equal(await first.stop("SIGKILL"), null);
  const third = spawnService([...NODE_TS, "backend/main.ts"], { ...env, LOG_LEVEL: "info" });
  running.push(third);
  const listening = await third.waitForLog((l) => l.msg === "backend listening", 90_000);
  assert.equal((await fetch(`http://127.0.0.1:${listening.port}/health/ready`)).status, 200);
  assert.equal(await third.stop("SIGTERM"), 0);
  assert.ok(!existsSync(`${dataDir}.lock`), "a clean stop leaves no lock");
});

test("backend stops cleanly on SIGHUP (the terminal that ran it closed): its embedded database is closed, not left to recover", async () => {
  const root = mkdtempSync(join(tmpdir(), "backend-pglite-"));
  roots.push(root);
  const dataDir = join(root, "pglite");
  const service = spawnService([...NODE_TS, "backend/main.ts"], {
    PORT: "0",
    HOST: "127.0.0.1",
    DATABASE_URL: "",
    LOG_LEVEL: "info",
    PGLITE_DATA_DIR: dataDir,
  });
  running.push(service);
  await service.waitForLog((l) => l.msg === "backend listening", 90_000);
  // Its output closed first, as a terminal's is when it closes: writing "backend stopping" fails.
  service.child.stdout?.destroy();
  service.child.stderr?.destroy();
  assert.equal(await service.stop("SIGHUP"), 0);
  assert.ok(!existsSync(`${dataDir}.lock`), "the database was closed: the lock is released");
});

test("backend exits non-zero saying its port is in use", async () => {
  const taken = createServer();
  taken.listen(0, "127.0.0.1");
  await once(taken, "listening");
  const port = (taken.address() as AddressInfo).port;
  const service = spawnService([...NODE_TS, "backend/main.ts"], {
    PORT: String(port),
    HOST: "127.0.0.1",
    DATABASE_URL: "",
  });
  running.push(service);
  const code = await exitCode(service);
  taken.close();
  assert.equal(code, 1);
  const text = service.lines.join("\n");
  assert.ok(
    text.includes(`backend: cannot listen on 127.0.0.1:${port}: address in use (set PORT)`),
    text,
  );
  assert.doesNotMatch(text, /\n\s+at /, "no stack trace");
});
