// `npm start` / `deno task start`: the backend (with the simulator) and the engine on one machine, Ctrl-C stops both.
import { isAbsolute, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { watchParent } from "./contracts/launcher_watch.ts";
import { seedRegistry } from "./engine/infer/seed_registry.ts";
import {
  backendStoreEnv,
  DEMO_ENGINE_ENV,
  databaseLine,
  type LaunchedService,
  launchService,
  NODE_SERVICE_ARGS,
  nodeServiceEnv,
  simulatorLine,
  stopGraceMs,
  summariseLogLine,
} from "./launch.ts";
import { ignoreClosedOutput } from "./telemetry/logger.ts";

// biome-ignore lint/suspicious/noExplicitAny: Deno's namespace is not in Node's types
const deno = (globalThis as any).Deno as any;
const env: Record<string, string | undefined> = deno ? deno.env.toObject() : process.env;

/**
 * `env[name]` (else `fallback`) as a port to listen on and to build the printed and passed URLs
 * from; anything but an integer 1..65535 ends the start with one line naming it (0 would let the
 * service pick a port nobody is told).
 */
function portSetting(name: "PORT" | "APP_PORT", fallback: string): string {
  const value = env[name] ?? fallback;
  if (/^\d{1,5}$/.test(value) && +value >= 1 && +value <= 65535) return String(+value);
  process.stderr.write(
    `start: '${name}' must be an integer 1..65535, got ${JSON.stringify(value)}\n`,
  );
  if (deno) deno.exit(1);
  process.exit(1);
}
const backendPort = portSetting("PORT", "3000");
const enginePort = portSetting("APP_PORT", "9000");
// Both on one port, the second to start would fail "address in use" after the banner: refused
// here, before anything starts.
if (backendPort === enginePort) {
  process.stderr.write(
    `start: 'PORT' and 'APP_PORT' must differ (the backend and the engine each listen on their own), both are ${backendPort}\n`,
  );
  if (deno) deno.exit(1);
  process.exit(1);
}

/**
 * The host part of a URL that reaches a service listening on `host` (`HOST`, `APP_HOST`) from this
 * machine, or `undefined` for an unset one or `0.0.0.0` (the caller's loopback name answers
 * those). `::` (every interface, IPv6) is reached at `[::1]`, which it answers even where it takes
 * no IPv4 (`net.ipv6.bindv6only=1`); an IPv6 address is put in brackets.
 *
 * @example reachableHost("::1") // "[::1]"
 */
function reachableHost(host: string | undefined): string | undefined {
  const h = host?.trim().replace(/^\[(.*)\]$/, "$1");
  if (!h || h === "0.0.0.0") return undefined;
  if (h === "::") return "[::1]";
  return h.includes(":") ? `[${h}]` : h;
}
// What each service is told to reach the other at, and the banner prints: where it listens, so a
// service bound to one address (HOST=::1) is not sent to another (localhost, 127.0.0.1 here).
const backendUrl = `http://${reachableHost(env.HOST) ?? "localhost"}:${backendPort}`;
const engineUrl = `http://${reachableHost(env.APP_HOST) ?? "localhost"}:${enginePort}`;
// The same runtime that runs this file runs the services.
const runner = deno ? [deno.execPath(), "run", "-A"] : [process.execPath, ...NODE_SERVICE_ARGS];
const root = fileURLToPath(new URL(".", import.meta.url));
// The committed models are copied into a registry under the engine's DATA_DIR, so retraining
// can write and activate versions there without touching the repository's models/.
const dataDir = env.DATA_DIR ?? ".data/engine";
const modelDir =
  env.MODEL_DIR ?? join(isAbsolute(dataDir) ? dataDir : join(root, dataDir), "models");
if (env.MODEL_DIR === undefined) {
  let seeded: Awaited<ReturnType<typeof seedRegistry>>;
  try {
    seeded = await seedRegistry(join(root, "models"), modelDir);
  } catch (error) {
    // A DATA_DIR that cannot be written (read-only, a file in the way, no permission): one line
    // saying which and why, not a stack trace.
    process.stderr.write(
      `start: DATA_DIR ${dataDir}: cannot write the model registry under it (${(error as Error).message}); set DATA_DIR to a folder this user can write\n`,
    );
    process.exit(1);
  }
  for (const m of seeded) {
    if (m.written)
      process.stdout.write(`[start  ] model ${m.name} ${m.version} copied into ${modelDir}\n`);
  }
}

/**
 * Deno's OpenTelemetry setting for the services: `deno task start` runs this launcher with it off
 * (its health checks would export as a third service) and hands the user's `OTEL_DENO` over as
 * `LAUNCH_OTEL_DENO`.
 */
function denoServiceEnv(e: Record<string, string | undefined>): Record<string, string | undefined> {
  if (e.LAUNCH_OTEL_DENO === undefined) return {};
  // The user's OTEL_DENO unset reaches here empty: unset for the services too (Deno warns about
  // an empty value, and off is its default).
  return { OTEL_DENO: e.LAUNCH_OTEL_DENO || undefined, LAUNCH_OTEL_DENO: undefined };
}

const services: Record<string, { file: string; env: Record<string, string> }> = {
  backend: {
    file: "backend/main.ts",
    env: {
      // Deno's built-in OpenTelemetry (OTEL_DENO=true) takes the service name only from the
      // environment it starts with: without this, both services export as unknown_service:deno.
      // A name the user set names both: each gets its own suffix, or they could not be told
      // apart in traces and metrics.
      OTEL_SERVICE_NAME: env.OTEL_SERVICE_NAME ? `${env.OTEL_SERVICE_NAME}-backend` : "backend",
      PORT: backendPort,
      ENGINE_URL: engineUrl,
      ...backendStoreEnv(env, root),
      SIMULATOR_RATE_HZ: env.SIMULATOR_RATE_HZ ?? "1",
      SIMULATOR_ANOMALY_EVERY_S: env.SIMULATOR_ANOMALY_EVERY_S ?? "20",
      // Once, three minutes in, the machine stops for a minute: the console shows it as machine
      // off, not as an anomaly.
      SIMULATOR_STOP_AT_S: env.SIMULATOR_STOP_AT_S ?? "180",
      SIMULATOR_STOP_FOR_S: env.SIMULATOR_STOP_FOR_S ?? "60",
    },
  },
  engine: {
    file: "engine/main.ts",
    env: {
      OTEL_SERVICE_NAME: env.OTEL_SERVICE_NAME ? `${env.OTEL_SERVICE_NAME}-engine` : "engine",
      // Like the backend without sign-in: this machine only (compose and scale-out set 0.0.0.0,
      // with ADMIN_TOKEN).
      APP_HOST: env.APP_HOST ?? "127.0.0.1",
      APP_PORT: enginePort,
      NESTJS_URL: backendUrl,
      DEFAULT_DEVICE: env.DEFAULT_DEVICE ?? "cpu",
      // The demo's incident, history and retraining settings (launch.ts says why), which compose
      // sets too.
      INCIDENT_QUIET_WINDOWS: env.INCIDENT_QUIET_WINDOWS ?? DEMO_ENGINE_ENV.INCIDENT_QUIET_WINDOWS,
      // The engine keeps its own copy of the backend's silences and verdicts.
      DECISIONS_POLL_S: env.DECISIONS_POLL_S ?? "30",
      // Our backend takes alerts of up to 16 MiB: room for every charted sensor's history.
      EVIDENCE_ALERT_MAX_BYTES: env.EVIDENCE_ALERT_MAX_BYTES ?? String(512 * 1024),
      ALERT_MAX_BYTES: env.ALERT_MAX_BYTES ?? String(16 * 1024 * 1024),
      MODEL_DIR: modelDir,
      HISTORY_EVERY_N: env.HISTORY_EVERY_N ?? DEMO_ENGINE_ENV.HISTORY_EVERY_N,
      RETRAIN_PROMOTE: env.RETRAIN_PROMOTE ?? DEMO_ENGINE_ENV.RETRAIN_PROMOTE,
    },
  },
};

// Closing the terminal (SIGHUP) must not end the launcher in the middle of stopping the services.
ignoreClosedOutput();
const say = (line: string) => process.stdout.write(`${line}\n`);
const children = new Map<string, LaunchedService>();
const listening = new Set<string>();
let stopping = false;
let announced = false;

function summarise(name: string, line: string): string {
  // Service logs are JSON lines; show the message and a few useful fields, keep the rest terse.
  const { text, msg } = summariseLogLine(line);
  if (msg?.endsWith("listening")) listening.add(name);
  return text;
}

function announce() {
  if (announced || stopping) return;
  announced = true;
  say("");
  say(`  console   ${backendUrl}/   (open it in a browser: live incidents and their evidence)`);
  say(`  backend   ${backendUrl}   (incidents: ${backendUrl}/api/v1/incidents)`);
  say(`  engine    ${engineUrl}   (ready: ${engineUrl}/health/ready)`);
  say(`  ${databaseLine({ ...env, ...services.backend.env })}`);
  say(`  ${simulatorLine({ ...env, ...services.backend.env })}`);
  say("  Ctrl-C stops everything.");
  say("");
}

for (const [name, service] of Object.entries(services)) {
  const child = launchService([...runner, service.file], {
    cwd: root,
    env: { ...env, ...(deno ? denoServiceEnv(env) : nodeServiceEnv(env)), ...service.env },
  });
  children.set(name, child);
  for (const stream of child.output) {
    createInterface({ input: stream }).on("line", (line) => {
      say(`[${name.padEnd(7)}] ${summarise(name, line)}`);
      if (listening.size === 2) announce();
    });
  }
  child.exited.then(({ code, signal }) => {
    children.delete(name);
    say(`[${name.padEnd(7)}] exited ${signal ?? code}`);
    // One service gone means the demo is broken: stop the other too. While stopping, one that
    // exits non-zero or has to be killed fails the stop; one ended by the stop signal itself
    // (still starting, its handler not yet installed) does not.
    if (!stopping) stop(code === 0 ? 1 : (code ?? 1));
    else {
      if (exitCode === 0 && ((code ?? 0) !== 0 || signal === "SIGKILL")) exitCode = code || 1;
      if (children.size === 0) finish();
    }
  });
}

let exitCode = 0;
function finish() {
  if (deno) deno.exit(exitCode);
  process.exit(exitCode);
}

function stop(code = 0) {
  if (stopping) return;
  stopping = true;
  exitCode = code;
  say("stopping ...");
  for (const child of children.values()) child.kill("SIGTERM");
  if (children.size === 0) finish();
  // A child still running well past the drain it was allowed is killed.
  setTimeout(() => {
    for (const child of children.values()) child.kill("SIGKILL");
  }, stopGraceMs(env)).unref?.();
}

// The "listening" log lines announce the URLs as soon as both services are up; at LOG_LEVEL=warn
// or error there are none, so both ports are also asked, until they answer.
async function announceWhenLive() {
  const live = async (url: string) => {
    try {
      const res = await fetch(`${url}/health/live`, { signal: AbortSignal.timeout(1000) });
      await res.body?.cancel();
      return res.ok;
    } catch {
      return false;
    }
  };
  // Where each listens: an address of every interface is asked on the loopback one.
  const at = (host: string | undefined, port: string) =>
    `http://${reachableHost(host) ?? "127.0.0.1"}:${port}`;
  const backend = at(env.HOST, backendPort);
  const engine = at(services.engine.env.APP_HOST, enginePort);
  while (!announced && !stopping) {
    if ((await live(backend)) && (await live(engine))) announce();
    else await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

say(`starting backend (${runner[0].split("/").pop()}) and engine ...`);
// SIGHUP: the terminal closed (a dropped SSH session): stop as cleanly as for Ctrl-C, so the
// services drain and the embedded database is closed, not left to recover at the next start.
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  if (deno) deno.addSignalListener(signal, () => stop(0));
  else process.on(signal, () => stop(0));
}
// A parent that changes means whoever started this is gone (npm, or `deno task`, killed; `npm
// start` execs this file, so its parent is npm itself, not a shell that would outlive npm): stop
// too, not keep both services running under init. The services watch this process the same way
// (LAUNCHER_PID), for when it is the one killed with SIGKILL.
watchParent(process.ppid, function parentGone() {
  stop(0);
});
void announceWhenLive();
