// Engine entry point (Node and Deno): read the configuration, serve, load the model, stop on signals.

import { accessSync, constants, readdirSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import process from "node:process";
import { ConfigError, engineConfigSchema, parseConfig } from "../contracts/config.ts";
import { watchLauncher } from "../contracts/launcher_watch.ts";
import { listenProblem } from "../contracts/listen_problem.ts";
import { withSecretFiles } from "../contracts/secret_files.ts";
import { otelMiddleware } from "../telemetry/hono.ts";
import { createLogger } from "../telemetry/logger.ts";
import { startTelemetry } from "../telemetry/setup.ts";
import { createRole } from "./roles/create_role.ts";
import { serve } from "./serve.ts";

let config: ReturnType<typeof parseConfig<typeof engineConfigSchema>>;
try {
  config = parseConfig(engineConfigSchema, withSecretFiles(process.env));
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(`engine: ${error.message}`);
  process.exit(1);
}

// Folders the settings name, checked before anything listens: a line naming the variable, not a
// bare ENOENT or EEXIST from deep inside the start.
const folderProblem = foldersProblem(config);
if (folderProblem) {
  console.error(`engine: ${folderProblem}`);
  process.exit(1);
}

const log = createLogger({ service: "engine", level: config.LOG_LEVEL });
// Telemetry's own lines (an export that failed) go through the service's logger and its level.
const stopTelemetry = await startTelemetry("engine", { log });
// ENGINE_ROLE + FRAME_BUS pick the single-process engine (default) or a scale-out role.
let engine: ReturnType<typeof createRole>;
try {
  engine = createRole({ config, log, middleware: [otelMiddleware("engine")] });
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(`engine: ${error.message}`);
  process.exit(1);
}
let server: Awaited<ReturnType<typeof serve>>;
try {
  server = await serve(engine.app.fetch, { hostname: config.APP_HOST, port: config.APP_PORT });
} catch (error) {
  const { reason, fix } = listenProblem(error);
  const setting = fix === "port" ? "APP_PORT" : "APP_HOST";
  console.error(
    `engine: cannot listen on ${config.APP_HOST}:${config.APP_PORT}: ${reason} (set ${setting})`,
  );
  await stopTelemetry();
  process.exit(1);
}
log.info("engine listening", { host: config.APP_HOST, port: server.port, pid: process.pid });
if (!/^(127\.|::1$|localhost$)/.test(config.APP_HOST) && !config.ADMIN_TOKEN) {
  log.warn(
    "listening beyond this machine without ADMIN_TOKEN: whoever reaches it can activate and retrain models; set ADMIN_TOKEN, or APP_HOST=127.0.0.1",
    { host: config.APP_HOST },
  );
}

let stopping = false;
async function stop(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info("shutting down", { signal, timeout_ms: config.SHUTDOWN_TIMEOUT_MS });
  // A last resort if something hangs past the deadline: exit anyway, but say so.
  const force = setTimeout(() => {
    log.error("shutdown overran its deadline; exiting");
    process.exit(1);
  }, config.SHUTDOWN_TIMEOUT_MS + 2000);
  force.unref?.();
  const started = performance.now();
  await engine.shutdown(config.SHUTDOWN_TIMEOUT_MS);
  // Connections still open past the drain (an upload that never finishes) are cut.
  const drainLeft = config.SHUTDOWN_TIMEOUT_MS - (performance.now() - started);
  await server.close(AbortSignal.timeout(Math.max(1, Math.floor(drainLeft))));
  // Telemetry's last flush within 2 s, and ending a second before the watchdog at the latest.
  const left = config.SHUTDOWN_TIMEOUT_MS + 1000 - (performance.now() - started);
  await stopTelemetry(AbortSignal.timeout(Math.max(1, Math.floor(Math.min(2000, left)))));
  process.exit(0);
}
// `on`, not `once`: a second signal (Ctrl-C reaches a process twice under `deno task`, or a
// person presses it again) must find a listener, or its default action ends the drain; `stop`
// ignores it.
process.on("SIGTERM", () => void stop("SIGTERM"));
process.on("SIGINT", () => void stop("SIGINT"));
// The terminal that ran it closed: drain and stop as for SIGTERM, not die mid-write.
process.on("SIGHUP", () => void stop("SIGHUP"));
// Started by `npm start` / `deno task start`, whose launcher was killed (SIGKILL, which it cannot
// pass on): stop as on SIGTERM rather than keep its port and alerts.lock under init.
watchLauncher(process.env, function launcherGone(pid) {
  log.warn("launcher gone: stopping as on SIGTERM", { launcher_pid: pid });
  void stop("launcher gone");
});

try {
  await engine.start();
} catch (error) {
  log.error("engine failed to start", error as Error, {
    model_dir: config.MODEL_DIR,
    model: config.DEFAULT_MODEL_NAME,
    device: config.DEFAULT_DEVICE,
  });
  console.error(`engine: ${(error as Error).message}`);
  // Bounded: producers still posting (each answered `503`) would otherwise keep it from idling.
  await server.close(AbortSignal.timeout(2000));
  await stopTelemetry();
  process.exit(1);
}

/**
 * Why MODEL_SEED_DIR (a folder that must exist and be readable) or DATA_DIR (made when missing,
 * so its nearest existing part must be a folder this user can write in) cannot be used, naming the
 * variable; `undefined` when both can. An ingest replica keeps nothing in DATA_DIR.
 */
function foldersProblem(c: typeof config): string | undefined {
  if (c.MODEL_SEED_DIR) {
    try {
      readdirSync(c.MODEL_SEED_DIR);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const why =
        code === "ENOENT" || code === "ENOTDIR" ? "no such folder" : (error as Error).message;
      return `'MODEL_SEED_DIR' ${c.MODEL_SEED_DIR}: ${why}; set it to the folder of the models to copy (NAME.onnx + NAME.json), or leave it unset`;
    }
  }
  if (c.ENGINE_ROLE === "ingest") return undefined;
  const fix = "set DATA_DIR to a folder this user can write";
  let at = resolve(c.DATA_DIR);
  for (;;) {
    let isFolder: boolean;
    try {
      isFolder = statSync(at).isDirectory();
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const up = dirname(at);
      if ((code === "ENOENT" || code === "ENOTDIR") && up !== at) {
        at = up;
        continue;
      }
      return `'DATA_DIR' ${c.DATA_DIR}: ${(error as Error).message}; ${fix}`;
    }
    if (!isFolder) {
      const what = at === resolve(c.DATA_DIR) ? "it" : at;
      return `'DATA_DIR' ${c.DATA_DIR}: ${what} is a file, not a folder; ${fix}`;
    }
    try {
      accessSync(at, constants.W_OK | constants.X_OK);
    } catch {
      return `'DATA_DIR' ${c.DATA_DIR}: this user cannot write in ${at}; ${fix}`;
    }
    return undefined;
  }
}
