// `npm start` and the hosts and ports it builds its URLs from: a PORT or APP_PORT no service could listen on is refused up front, naming it; each service reaches the other where it listens.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { freePort } from "./backend/_test/free_port.ts";
import {
  NODE_TS,
  type ServiceProcess,
  spawnService,
  waitFor,
} from "./backend/_test/spawn_service.ts";

const ROOT = fileURLToPath(new URL(".", import.meta.url));

const started: ServiceProcess[] = [];
after(() => {
  for (const s of started) s.stop("SIGKILL");
});

for (const [name, value] of [
  ["PORT", "0"],
  ["PORT", "99999"],
  ["PORT", "abc"],
  ["APP_PORT", "99999"],
  ["APP_PORT", "0"],
  ["APP_PORT", "9000x"],
] as const) {
  test(`npm start with ${name}=${value} exits 1 with one line naming ${name}`, () => {
    const run = spawnSync(process.execPath, ["run_ts.mjs", "start.ts"], {
      cwd: ROOT,
      env: { ...process.env, [name]: value },
      encoding: "utf8",
      timeout: 60_000,
    });
    assert.equal(run.status, 1, `${run.stdout}\n${run.stderr}`);
    assert.equal(
      run.stderr,
      `start: '${name}' must be an integer 1..65535, got ${JSON.stringify(value)}\n`,
    );
    assert.doesNotMatch(run.stdout, /starting backend/, "nothing was started");
  });
}

test("npm start with PORT equal to APP_PORT exits 1 with one line naming both, before starting anything", async () => {
  const port = String(await freePort());
  const data = await mkdtemp(join(tmpdir(), "start-same-port-"));
  try {
    const run = spawnSync(process.execPath, ["run_ts.mjs", "start.ts"], {
      cwd: ROOT,
      env: {
        ...process.env,
        PORT: port,
        APP_PORT: port,
        DATA_DIR: join(data, "engine"),
        PGLITE_DATA_DIR: join(data, "backend"),
        DATABASE_URL: "",
      },
      encoding: "utf8",
      timeout: 60_000,
    });
    assert.equal(run.status, 1, `${run.stdout}\n${run.stderr}`);
    assert.equal(
      run.stderr,
      `start: 'PORT' and 'APP_PORT' must differ (the backend and the engine each listen on their own), both are ${port}\n`,
    );
    assert.doesNotMatch(run.stdout, /starting backend/, "nothing was started");
  } finally {
    await rm(data, { recursive: true, force: true });
  }
});

test("npm start with HOST and APP_HOST ::1 has each service reach the other there: an alert is stored, and the banner names [::1]", async () => {
  const data = await mkdtemp(join(tmpdir(), "start-hosts-"));
  try {
    const [backendPort, enginePort] = [await freePort(), await freePort()];
    const start = spawnService([...NODE_TS, "start.ts"], {
      HOST: "::1",
      APP_HOST: "::1",
      PORT: String(backendPort),
      APP_PORT: String(enginePort),
      DATA_DIR: join(data, "engine"),
      PGLITE_DATA_DIR: join(data, "backend"),
      DATABASE_URL: "",
      // Faster than the demo's 1 Hz / 20 s so the test is short; the wiring is the same.
      SIMULATOR_RATE_HZ: "4",
      SIMULATOR_ANOMALY_EVERY_S: "4",
    });
    started.push(start);
    // Frames go from the backend's simulator to the engine (ENGINE_URL), the alert back from the
    // engine to the backend (NESTJS_URL): a stored alert took both.
    const alert = await waitFor(
      async () => {
        const res = await fetch(`http://[::1]:${backendPort}/api/v1/alerts?limit=1`);
        return (await res.json()).alerts[0];
      },
      "a stored alert",
      120_000,
      500,
    ).catch((error) => {
      throw new Error(`${error.message}:\n${start.lines.slice(-20).join("\n")}`);
    });
    assert.equal(alert.stream_id, "default");
    const banner = start.lines.join("\n");
    assert.match(banner, new RegExp(`backend   http://\\[::1\\]:${backendPort} `));
    assert.match(banner, new RegExp(`engine    http://\\[::1\\]:${enginePort} `));
    assert.doesNotMatch(banner, /alert delivery failing/);

    start.child.kill("SIGINT");
    const code = await new Promise<number | null>((resolve) => start.child.once("exit", resolve));
    assert.equal(code, 0, start.lines.slice(-20).join("\n"));
  } finally {
    await rm(data, { recursive: true, force: true });
  }
});
