// Every Node launcher starts services the same way: launch.ts, package.json, the Dockerfile.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import {
  backendStoreEnv,
  databaseLine,
  NODE_SERVICE_ARGS,
  nodeServiceEnv,
  reasonOf,
  type ServiceExit,
  simulatorLine,
  stopGraceMs,
  summariseLogLine,
} from "./launch.ts";

const read = (file: string) => readFileSync(new URL(file, import.meta.url), "utf8");

test("npm scripts start each service with the launch arguments", () => {
  const { scripts } = JSON.parse(read("package.json"));
  for (const [name, entry] of [
    ["start", "start.ts"],
    ["engine", "engine/main.ts"],
    ["backend", "backend/main.ts"],
  ]) {
    // `exec`: each replaces npm's shell, so npm is its parent (start.ts watches it) and a
    // SIGTERM to npm reaches it (npm_scripts_stop.test.ts).
    assert.equal(scripts[name], ["exec node", ...NODE_SERVICE_ARGS, entry].join(" "), name);
  }
});

test("the container images start services with the launch arguments and environment", () => {
  const dockerfile = read("Dockerfile");
  const entrypoints = [...dockerfile.matchAll(/^ENTRYPOINT (.+)$/gm)].map((m) => JSON.parse(m[1]));
  assert.equal(entrypoints.length, 2);
  for (const entrypoint of entrypoints)
    assert.deepEqual(entrypoint, ["node", ...NODE_SERVICE_ARGS]);
  for (const [key, value] of Object.entries(nodeServiceEnv({}))) {
    assert.equal(dockerfile.match(new RegExp(`^ENV .*\\b${key}=${value}\\b`, "gm"))?.length, 2);
  }
  assert.match(dockerfile, /^COPY .*\brun_ts\.mjs\b/m);
});

test("the image copies every folder of sources the services import", () => {
  // A folder left out (scoring/ was) makes every service fail to start in a container.
  const dockerfile = read("Dockerfile");
  const root = fileURLToPath(new URL(".", import.meta.url));
  const hasSources = (dir: string): boolean =>
    readdirSync(dir, { withFileTypes: true }).some((e) =>
      e.isDirectory()
        ? e.name !== "node_modules" && hasSources(join(dir, e.name))
        : /\.tsx?$/.test(e.name) && !/\.test\.tsx?$/.test(e.name),
    );
  const folders = readdirSync(root, { withFileTypes: true })
    .filter(
      (e) =>
        e.isDirectory() && !e.name.startsWith(".") && !["node_modules", "tmp"].includes(e.name),
    )
    .map((e) => e.name)
    .filter((name) => hasSources(join(root, name)));
  assert.ok(folders.includes("engine") && folders.includes("scoring"), folders.join(", "));
  for (const folder of folders) {
    assert.match(dockerfile, new RegExp(`^COPY ${folder} \\./${folder}$`, "m"), folder);
  }
});

test("nodeServiceEnv keeps a value the user set", () => {
  assert.deepEqual(nodeServiceEnv({}), { MALLOC_ARENA_MAX: "2" });
  assert.deepEqual(nodeServiceEnv({ MALLOC_ARENA_MAX: "8" }), { MALLOC_ARENA_MAX: "8" });
});

test("run_ts.mjs compiles a TypeScript entry once and runs it with its arguments", () => {
  const dir = mkdtempSync(join(tmpdir(), "run-ts-"));
  const entry = join(dir, "entry.ts");
  writeFileSync(
    entry,
    `const meta: string = import.meta.url;
    console.log(JSON.stringify({ argv: process.argv.slice(1), meta, execArgv: process.execArgv }));`,
  );
  const root = fileURLToPath(new URL(".", import.meta.url));
  const run = spawnSync(process.execPath, ["run_ts.mjs", entry, "--flag", "x"], {
    cwd: root,
    encoding: "utf8",
    env: { ...process.env, NODE_OPTIONS: "" },
  });
  assert.equal(run.status, 0, run.stderr);
  const out = JSON.parse(run.stdout);
  // The entry sees itself as the script, as under `node --import tsx`, and its own URL.
  assert.deepEqual(out.argv, [entry, "--flag", "x"]);
  assert.equal(out.meta, pathToFileURL(entry).href);
  assert.deepEqual(out.execArgv, []);
  // run_ts.mjs names the cached module after the entry path; this test's entry is removed with it.
  const cache = join(root, "node_modules/.cache/run_ts");
  const prefix = `${entry.replace(/[^\w.-]+/g, "_")}.`;
  const cached = readdirSync(cache).filter((name) => name.startsWith(prefix));
  for (const name of cached) rmSync(join(cache, name), { force: true });
  rmSync(dir, { recursive: true, force: true });
  assert.equal(cached.length, 1, "the compiled module is cached");
});

test("launchService reports the exit code a signalled child exits with, under Node and Deno", () => {
  // Deno's node:child_process says "SIGTERM" for each of these: a clean stop and a failure alike.
  const root = fileURLToPath(new URL(".", import.meta.url));
  const driver = `
    import { once } from "node:events";
    import { createInterface } from "node:readline";
    import { launchService } from ${JSON.stringify(new URL("./launch.ts", import.meta.url).href)};
    const results = [];
    for (const code of [0, 1, null]) {
      const onTerm = code === null ? "" : \`process.on("SIGTERM", () => process.exit(\${code}));\`;
      const script = \`\${onTerm} console.log("ready"); setInterval(() => {}, 1000);\`;
      const child = launchService([${JSON.stringify(process.execPath)}, "-e", script], {
        cwd: ".",
        env: { PATH: "" },
      });
      await once(createInterface({ input: child.output[0] }), "line");
      child.kill("SIGTERM");
      results.push(await child.exited);
    }
    console.log(JSON.stringify(results));
  `;
  const expected: ServiceExit[] = [
    { code: 0, signal: null },
    { code: 1, signal: null },
    { code: null, signal: "SIGTERM" },
  ];
  const runtimes: [string, string[]][] = [
    ["node", [process.execPath, "--import", "tsx", "--input-type=module", "-e", driver]],
    ["deno", [join(root, "node_modules/.bin/deno"), "eval", driver]],
  ];
  for (const [runtime, command] of runtimes) {
    const run = spawnSync(command[0], command.slice(1), {
      cwd: root,
      encoding: "utf8",
      timeout: 60_000,
    });
    assert.equal(run.status, 0, `${runtime}: ${run.stderr}`);
    assert.deepEqual(JSON.parse(run.stdout), expected, runtime);
  }
});

test("stopGraceMs leaves a service the drain it was allowed, and a margin", () => {
  assert.equal(stopGraceMs({}), 20_000);
  assert.equal(stopGraceMs({ SHUTDOWN_TIMEOUT_MS: "60000" }), 70_000);
  assert.equal(stopGraceMs({ SHUTDOWN_TIMEOUT_MS: "1000" }), 20_000);
  assert.equal(stopGraceMs({ SHUTDOWN_TIMEOUT_MS: "soon" }), 20_000);
});

test("npm start keeps the backend's embedded database in .data/backend unless told otherwise", () => {
  assert.deepEqual(backendStoreEnv({}, "/repo"), { PGLITE_DATA_DIR: "/repo/.data/backend" });
  assert.deepEqual(backendStoreEnv({ PGLITE_DATA_DIR: "/srv/db" }, "/repo"), {});
  assert.deepEqual(backendStoreEnv({ PGLITE_DATA_DIR: "" }, "/repo"), {});
  assert.deepEqual(backendStoreEnv({ DATABASE_URL: "postgres://db/x" }, "/repo"), {});
  assert.match(databaseLine({ PGLITE_DATA_DIR: "/repo/.data/backend" }), /kept across restarts/);
  assert.match(databaseLine({ PGLITE_DATA_DIR: "" }), /in memory/);
  assert.match(databaseLine({ DATABASE_URL: "postgres://db/x" }), /^database {2}PostgreSQL/);
});

test("simulatorLine says what the simulator was set to do", () => {
  assert.equal(simulatorLine({ SIMULATOR_RATE_HZ: "0" }), "simulator off (SIMULATOR_RATE_HZ=0)");
  assert.equal(
    simulatorLine({
      SIMULATOR_RATE_HZ: "1",
      SIMULATOR_ANOMALY_EVERY_S: "20",
      SIMULATOR_STOP_AT_S: "180",
    }),
    "simulator 1 frame/s with an anomaly about every 20 s; the machine stops once after 180 s, for 60 s",
  );
  assert.equal(
    simulatorLine({
      SIMULATOR_RATE_HZ: "2",
      SIMULATOR_STREAMS: "3",
      SIMULATOR_ANOMALY_EVERY_S: "0",
      SIMULATOR_STOP_AT_S: "0",
    }),
    "simulator 2 frame/s on each of 3 streams, no anomalies",
  );
});

test("reasonOf gives an error line's reason, with its causes, as one line", () => {
  assert.equal(
    reasonOf({
      name: "PostgresError",
      message: 'could not extend file "base/5/16461_fsm": No space left on device',
    }),
    'could not extend file "base/5/16461_fsm": No space left on device',
  );
  assert.equal(
    reasonOf({ message: "fetch failed", cause: { message: "connect\nECONNREFUSED" } }),
    "fetch failed: connect ECONNREFUSED",
  );
  assert.equal(reasonOf("plain text"), "plain text");
  assert.equal(reasonOf(undefined), "");
});

test("npm start with a DATA_DIR it cannot write says so in one line and exits 1", () => {
  const root = mkdtempSync(join(tmpdir(), "start-data-dir-"));
  try {
    writeFileSync(join(root, "a-file"), "");
    const dataDir = join(root, "a-file", "engine");
    // Without MODEL_DIR: npm start copies the committed models into DATA_DIR first.
    const { MODEL_DIR: _, ...env } = process.env;
    const run = spawnSync(process.execPath, ["run_ts.mjs", "start.ts"], {
      cwd: fileURLToPath(new URL(".", import.meta.url)),
      env: { ...env, DATA_DIR: dataDir },
      encoding: "utf8",
      timeout: 60_000,
    });
    assert.equal(run.status, 1, run.stderr);
    assert.match(run.stderr, new RegExp(`start: DATA_DIR ${dataDir}: cannot write`));
    assert.doesNotMatch(run.stderr, /\n\s+at /, "no stack trace");
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("summariseLogLine keeps a service's line one line, whatever a client put in it", () => {
  // A request path as Hono decodes it (`%0A`), logged by a refused sign-in.
  const forged = JSON.stringify({
    level: "warn",
    msg: "sign-in refused",
    how: "bearer token",
    path: "/api/v1/incidents\n[backend] signed in  subject=token:admin role=admin",
  });
  const { text, msg } = summariseLogLine(forged);
  assert.equal(msg, "sign-in refused");
  assert.doesNotMatch(text, /[\n\r]/);
  assert.equal(
    text,
    "WARN sign-in refused  how=bearer token path=/api/v1/incidents\\n[backend] signed in  subject=token:admin role=admin",
  );
  // A receiver's answer in an error, a terminal escape in a message, a line that is no JSON.
  const answered = summariseLogLine(
    JSON.stringify({ level: "error", msg: "sent\u001b[2J", error: { message: "bad\rrequest" } }),
  );
  assert.equal(answered.text, "ERROR sent\\u001b[2J: bad request");
  assert.equal(summariseLogLine("plain\u2028text\ttab").text, "plain\\u2028text\ttab");
  assert.deepEqual(summariseLogLine('{"level":"info","msg":"engine listening","port":9000}'), {
    text: "engine listening  port=9000",
    msg: "engine listening",
  });
});

test("summariseLogLine shows a nested object's plain fields by their path, and leaves lists out", () => {
  // The engine's scoring summary, as ScoringSummary writes it on a GPU host.
  const line = JSON.stringify({
    level: "info",
    msg: "scoring summary",
    frames: 56,
    latency_ms: { p50: 9.5, p99: 14.25, max: 20 },
    resources: { rss_bytes: 3e8, gpu: { utilisation_percent: 37, deeper: { left: 1 } } },
    streams: ["a", "b"],
  });
  assert.equal(
    summariseLogLine(line).text,
    "scoring summary  frames=56 latency_ms.p50=9.5 latency_ms.p99=14.25 latency_ms.max=20 resources.rss_bytes=300000000 resources.gpu.utilisation_percent=37",
  );
});
