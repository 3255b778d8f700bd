// How a service process is started on Node. npm scripts, start.ts, the container, the benchmark
// and the tests all start services this way (a test checks package.json and the Dockerfile);
// launchers that run under Node or Deno start the process itself with `launchService`.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { Readable } from "node:stream";
import { LAUNCHER_PID } from "./contracts/launcher_watch.ts";

/**
 * `run_ts.mjs` compiles the TypeScript entry once instead of keeping a compiler thread (see that
 * file). `--max-semi-space-size=4` caps V8's young generation at 3 x 4 MB: under a full ingest
 * load the request thread otherwise grows it to ~50 MB for no measurable throughput.
 */
export const NODE_SERVICE_ARGS = ["--max-semi-space-size=4", "run_ts.mjs"] as const;

/**
 * glibc gives each thread that allocates its own malloc arena, and the engine has a dozen
 * (request thread, decode workers, inference worker, ONNX Runtime's pool, V8's helpers). Freed
 * frame buffers stay cached in each of them: two arenas keep ~30 MB less resident, measured at
 * no throughput cost. Ignored by other allocators (macOS, musl). A value already set wins.
 */
export function nodeServiceEnv(env: Record<string, string | undefined>): Record<string, string> {
  return { MALLOC_ARENA_MAX: env.MALLOC_ARENA_MAX ?? "2" };
}

/**
 * What the engines that score need for the simulated plant of `npm start` and compose, on top
 * of the engine's defaults (an environment variable of the same name wins under `npm start`):
 * - `INCIDENT_QUIET_WINDOWS`: the demo injects an anomaly of at most half a period every period
 *   (20 s at 1 Hz), so an incident must resolve within the 10 s between two: 5 quiet windows,
 *   plus the 4 windows that still hold the anomaly's last frame. The engine's default (30) suits
 *   real plants, and would merge every anomaly of the demo into one incident that never resolves.
 * - `HISTORY_EVERY_N`, `RETRAIN_PROMOTE`: every frame of the one stream is kept as training
 *   history (about 3 hours in 1 GiB at 1 Hz), so a moved operating point can be learnt within
 *   the hour, and a promoted retraining is activated at once (the gate decides). Retraining runs
 *   when an admin asks (Health page); RETRAIN_EVERY_H schedules it.
 */
export const DEMO_ENGINE_ENV = {
  INCIDENT_QUIET_WINDOWS: "5",
  HISTORY_EVERY_N: "1",
  RETRAIN_PROMOTE: "auto",
} as const;

/**
 * How long a launcher waits after SIGTERM before it kills a service: the drain the service is
 * allowed (`SHUTDOWN_TIMEOUT_MS`, 10 s unless set), plus its own watchdog's 2 s and telemetry's
 * last flush, with a margin; never under 20 s.
 */
export function stopGraceMs(env: Record<string, string | undefined>): number {
  const drain = Number(env.SHUTDOWN_TIMEOUT_MS || 10_000);
  return Math.max(20_000, (Number.isFinite(drain) ? drain : 10_000) + 10_000);
}

/**
 * Where `npm start`'s backend keeps its embedded database: `.data/backend` under `root`, beside the
 * engine's `.data/engine`, so incidents, operators' records and the notification outbox outlive a
 * restart. `PGLITE_DATA_DIR` set (empty: in memory) or `DATABASE_URL` (PostgreSQL) decides instead.
 */
export function backendStoreEnv(
  env: Record<string, string | undefined>,
  root: string,
): Record<string, string> {
  if (env.DATABASE_URL || env.PGLITE_DATA_DIR !== undefined) return {};
  return { PGLITE_DATA_DIR: join(root, ".data", "backend") };
}

/** Where the backend's data is, as `npm start` announces it. */
export function databaseLine(env: Record<string, string | undefined>): string {
  if (env.DATABASE_URL) return "database  PostgreSQL (DATABASE_URL)";
  if (env.PGLITE_DATA_DIR)
    return `database  ${env.PGLITE_DATA_DIR} (embedded PostgreSQL, kept across restarts)`;
  return "database  in memory (embedded PostgreSQL, PGLITE_DATA_DIR empty): gone when it stops";
}

/** What the demo's simulator does, as `npm start` announces it, from the backend's variables. */
export function simulatorLine(env: Record<string, string | undefined>): string {
  const rate = Number(env.SIMULATOR_RATE_HZ ?? 0);
  if (!(rate > 0)) return "simulator off (SIMULATOR_RATE_HZ=0)";
  const streams = Number(env.SIMULATOR_STREAMS ?? 1);
  const every = Number(env.SIMULATOR_ANOMALY_EVERY_S ?? 20);
  const stopAt = Number(env.SIMULATOR_STOP_AT_S ?? 0);
  const stopFor = Number(env.SIMULATOR_STOP_FOR_S ?? 60);
  return [
    `simulator ${rate} frame/s`,
    streams > 1 ? ` on each of ${streams} streams` : "",
    every > 0 ? ` with an anomaly about every ${every} s` : ", no anomalies",
    stopAt > 0 ? `; the machine stops once after ${stopAt} s, for ${stopFor} s` : "",
  ].join("");
}

/** How a launched service ended: its exit code, or (code null) the signal that ended it. */
export interface ServiceExit {
  code: number | null;
  signal: string | null;
}

/** A service process started by {@link launchService}. */
export interface LaunchedService {
  /** Its stdout and stderr. */
  output: Readable[];
  /** Sends `signal`; does nothing once the process has exited. */
  kill(signal: "SIGINT" | "SIGTERM" | "SIGKILL"): void;
  exited: Promise<ServiceExit>;
}

/**
 * Starts `command` in `cwd` with exactly `env` (plus `LAUNCHER_PID`) and piped output, from Node or Deno alike. Under
 * Deno it uses `Deno.Command`: Deno's node:child_process reports the signal it sent to a child
 * instead of the code the child then exited with, so a clean stop and a failure would read alike.
 * `LAUNCHER_PID` (this process) is added: a service that finds another parent stops as on SIGTERM
 * (contracts/launcher_watch.ts), so one launcher killed with SIGKILL leaves no service holding its
 * port and lock. `command[0]` must therefore be the service itself, not a wrapper that starts it.
 *
 * @example
 * const child = launchService([process.execPath, ...NODE_SERVICE_ARGS, "engine/main.ts"], { cwd, env });
 * const { code, signal } = await child.exited;
 */
export function launchService(
  command: string[],
  options: { cwd: string; env: Record<string, string | undefined> },
): LaunchedService {
  // biome-ignore lint/suspicious/noExplicitAny: Deno's namespace is not in Node's types
  const deno = (globalThis as any).Deno as any;
  if (deno) {
    const env = Object.fromEntries(
      Object.entries({ ...options.env, [LAUNCHER_PID]: String(deno.pid) }).filter(
        (entry): entry is [string, string] => entry[1] !== undefined,
      ),
    );
    const child = new deno.Command(command[0], {
      args: command.slice(1),
      cwd: options.cwd,
      env,
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    return {
      output: [Readable.fromWeb(child.stdout), Readable.fromWeb(child.stderr)],
      kill(signal) {
        try {
          child.kill(signal);
        } catch {
          // Already exited: its status is on its way.
        }
      },
      exited: child.status.then(({ code, signal }: { code: number; signal: string | null }) =>
        signal === null ? { code, signal } : { code: null, signal },
      ),
    };
  }
  const child = spawn(command[0], command.slice(1), {
    cwd: options.cwd,
    env: { ...options.env, [LAUNCHER_PID]: String(process.pid) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  return {
    output: [child.stdout, child.stderr],
    kill(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
    exited: new Promise((resolve) =>
      child.once("exit", (code, signal) => resolve({ code, signal })),
    ),
  };
}

/**
 * An error field of a service's JSON log line (`{name, message, cause?}`, or text) as one line:
 * its message and its causes', joined. `npm start` prints it after an error line's message.
 *
 * @example reasonOf({ name: "PostgresError", message: "No space left on device" }) // "No space left on device"
 */
export function reasonOf(error: unknown): string {
  const parts: string[] = [];
  for (let e = error, depth = 0; e && depth < 4; depth++) {
    if (typeof e === "string") {
      parts.push(e);
      break;
    }
    const { message, cause } = e as { message?: unknown; cause?: unknown };
    if (typeof message === "string" && message) parts.push(message);
    e = cause;
  }
  return parts.join(": ").replace(/\s+/g, " ");
}

/** C0 and C1 control characters but the tab, DEL, and the two Unicode line breaks. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point.
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u2028\u2029]/g;

/**
 * `text` with its control characters written as escapes (`\n`, `\u001b`): a value a client
 * chose (a request path, a receiver's answer) cannot start a line of its own that reads as a
 * service's, nor move the terminal's cursor.
 *
 * @example oneLine("a\nb") // "a\\nb"
 */
export function oneLine(text: string): string {
  return text.replace(CONTROL, (c) =>
    c === "\n" ? "\\n" : c === "\r" ? "\\r" : `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/**
 * `key=value` for each plain field of `fields`, those of a nested object as `key.inner=value`
 * (the scoring summary's `latency_ms.p99`, its `resources.gpu.utilisation_percent`), three levels
 * deep; lists are left out.
 *
 * @example plainFields({ n: 1, latency_ms: { p99: 12 }, ids: [1] }) // ["n=1", "latency_ms.p99=12"]
 */
function plainFields(fields: Record<string, unknown>, prefix = "", depth = 0): string[] {
  return Object.entries(fields).flatMap(([key, value]) => {
    if (typeof value !== "object" || value === null) return [`${prefix}${key}=${value}`];
    if (Array.isArray(value) || depth >= 2) return [];
    return plainFields(value as Record<string, unknown>, `${prefix}${key}.`, depth + 1);
  });
}

/**
 * A service's log line as `npm start` prints it: a JSON line as its level (but info), message,
 * the error's reason and its plain fields `key=value` (a nested object's as `key.inner=value`);
 * another line as it is. Every part on one
 * line (`oneLine`). `msg`: the JSON line's message.
 *
 * @example summariseLogLine('{"level":"warn","msg":"slow","ms":12}') // { text: "WARN slow  ms=12", msg: "slow" }
 */
export function summariseLogLine(line: string): { text: string; msg?: string } {
  if (!line.startsWith("{")) return { text: oneLine(line) };
  try {
    const { time: _t, level, msg, service: _s, error, ...fields } = JSON.parse(line);
    if (typeof msg !== "string") return { text: oneLine(line) };
    const rest = plainFields(fields).join(" ");
    // The reason of an error line (a full disk, a refused connection): without it an ERROR line
    // says only where something failed.
    const why = reasonOf(error);
    const text = `${level === "info" ? "" : `${String(level).toUpperCase()} `}${msg}${why ? `: ${why}` : ""}${rest ? `  ${rest}` : ""}`;
    return { text: oneLine(text), msg };
  } catch {
    return { text: oneLine(line) };
  }
}
