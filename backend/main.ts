// Backend entry point (Node and Deno): config, database, migrations, simulator, HTTP server, shutdown.
import { backendConfigSchema, ConfigError, parseConfig } from "../contracts/config.ts";
import { createLogger } from "../telemetry/logger.ts";
import { createBackendMetrics } from "../telemetry/metrics.ts";
import { startTelemetry } from "../telemetry/setup.ts";
import { exit, isDeno, onShutdownSignal, readEnv, serveApp } from "./_runtime.ts";
import { createBackendApp } from "./app.ts";
import { createEngineMonitor } from "./console/engine_monitor.ts";
import { openDatabase } from "./db/database.ts";
import { isUnavailable } from "./db/db_errors.ts";
import { migrate } from "./db/migrate.ts";
import { createIncidentHub } from "./incidents/incident_hub.ts";
import { createNotificationDispatcher } from "./notify/notification_dispatcher.ts";
import { loadNotifyConfig, type NotifyConfig, NotifyConfigError } from "./notify/notify_config.ts";
import { createPlantStreams } from "./simulator/plant_streams.ts";
import { createFrameSender, delay } from "./simulator/send_frame.ts";
import { createSimulator } from "./simulator/simulator.ts";
import { waitForEngine } from "./simulator/wait_for_engine.ts";

const stopTelemetry = await startTelemetry("backend");

let config: ReturnType<typeof parseConfig<typeof backendConfigSchema>>;
try {
  config = parseConfig(backendConfigSchema, readEnv());
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(`backend: ${error.message}`);
  exit(1);
}
// A bad routes file stops start-up with a message naming the route and the field.
let notifyConfig: NotifyConfig | undefined;
try {
  notifyConfig = config.NOTIFY_CONFIG
    ? await loadNotifyConfig(config.NOTIFY_CONFIG, readEnv())
    : undefined;
} catch (error) {
  if (!(error instanceof NotifyConfigError)) throw error;
  console.error(`backend: ${error.message}`);
  exit(1);
}

const log = createLogger({ service: "backend", level: config.LOG_LEVEL });
const metrics = createBackendMetrics();

const database = await openDatabase({
  url: config.DATABASE_URL,
  pgliteDataDir: config.PGLITE_DATA_DIR,
});
// A database that is still starting (compose, a restart) gets 30 s before start-up fails.
const migrationDeadline = AbortSignal.timeout(30_000);
for (;;) {
  try {
    const { applied, version } = await migrate(database.sql);
    log.info("database ready", { database: database.kind, schema_version: version, applied });
    break;
  } catch (error) {
    if (!isUnavailable(error) || migrationDeadline.aborted) {
      log.error("database migration failed", error as Error, { database: database.url });
      await database.close(1).catch(() => {});
      exit(1);
    }
    log.warn("database not reachable yet, retrying", { database: database.url });
    await delay(1000);
  }
}

const streams = createPlantStreams({
  nFeatures: config.SIMULATOR_FEATURES,
  seed: config.SIMULATOR_SEED,
});
const simulator = createSimulator({
  streams,
  send: createFrameSender({ engineUrl: config.ENGINE_URL, token: config.INGEST_TOKEN }),
  streamSend: createFrameSender({
    engineUrl: config.ENGINE_URL,
    token: config.INGEST_TOKEN,
    maxRetries: 5,
  }),
  log,
  metrics,
});

const notifier = createNotificationDispatcher({
  database,
  config: notifyConfig ?? { routes: [] },
  log,
});
notifier.start();
const notifications = notifyConfig ? notifier : undefined;

let draining = false;
const hub = createIncidentHub();
const app = createBackendApp({
  hub,
  consoleToken: config.CONSOLE_TOKEN,
  engine: createEngineMonitor({
    engineUrl: config.ENGINE_URL,
    timeoutMs: config.ENGINE_HEALTH_TIMEOUT_MS,
    adminToken: config.ADMIN_TOKEN,
  }),
  database,
  simulator,
  notifications,
  signingSecret: config.ALERT_SIGNING_SECRET,
  log,
  metrics,
  isDraining: () => draining,
});
const server = await serveApp(app, config.HOST, config.PORT);
const shownHost = config.HOST === "0.0.0.0" || config.HOST === "::" ? "localhost" : config.HOST;
log.info("backend listening", {
  url: `http://${shownHost}:${server.port}`,
  port: server.port,
  runtime: isDeno ? "deno" : "node",
  database: database.kind,
  signed_alerts: config.ALERT_SIGNING_SECRET !== undefined,
  console_token: config.CONSOLE_TOKEN !== undefined,
  notify_routes: notifyConfig?.routes.map((r) => r.name) ?? [],
  engine_url: config.ENGINE_URL,
});

const lifetime = new AbortController();
if (config.SIMULATOR_RATE_HZ > 0) {
  const plan = {
    rate_hz: config.SIMULATOR_RATE_HZ,
    streams: config.SIMULATOR_STREAMS,
    anomaly_every_s: config.SIMULATOR_ANOMALY_EVERY_S,
    stops:
      config.SIMULATOR_STOP_AT_S > 0
        ? [
            {
              at_frame: Math.round(config.SIMULATOR_STOP_AT_S * config.SIMULATOR_RATE_HZ),
              duration: Math.max(
                1,
                Math.round(config.SIMULATOR_STOP_FOR_S * config.SIMULATOR_RATE_HZ),
              ),
            },
          ]
        : [],
  };
  log.info("simulator waiting for the engine", { engine_url: config.ENGINE_URL });
  waitForEngine(config.ENGINE_URL, lifetime.signal)
    .then(() => simulator.start(plan))
    .catch(() => {});
}

onShutdownSignal(async function shutdown(signal) {
  log.info("backend stopping", { signal });
  draining = true;
  lifetime.abort(new Error("shutting down"));
  const deadline = AbortSignal.timeout(config.SHUTDOWN_TIMEOUT_MS);
  try {
    await simulator.stop();
    // Live console streams never end on their own; close them so the server can drain.
    hub.close();
    await server.close(deadline);
    await notifier.stop(deadline);
    await database.close(Math.max(1, Math.floor(config.SHUTDOWN_TIMEOUT_MS / 2000)));
    await stopTelemetry();
    log.info("backend stopped");
    exit(0);
  } catch (error) {
    log.error("backend shutdown failed", error as Error);
    exit(1);
  }
});
