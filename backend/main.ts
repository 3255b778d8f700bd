// Backend entry point (Node and Deno): config, database, migrations, simulator, HTTP server, shutdown.

import { authConfigProblem } from "../contracts/auth.ts";
import { backendConfigSchema, ConfigError, parseConfig } from "../contracts/config.ts";
import { watchLauncher } from "../contracts/launcher_watch.ts";
import { listenProblem } from "../contracts/listen_problem.ts";
import { withSecretFiles } from "../contracts/secret_files.ts";
import { createLogger } from "../telemetry/logger.ts";
import { createBackendMetrics } from "../telemetry/metrics.ts";
import { startTelemetry } from "../telemetry/setup.ts";
import { exit, isDeno, onShutdownSignal, readEnv, serveApp } from "./_runtime.ts";
import { createBackendApp } from "./app.ts";
import { createAuditRepository } from "./audit/audit_repository.ts";
import { createAuth } from "./auth/auth.ts";
import { createEndedSessions } from "./auth/ended_sessions.ts";
import { createOidc, type Oidc } from "./auth/oidc.ts";
import { openTokenStore, type TokenStore, TokensFileError } from "./auth/token_store.ts";
import { createEngineMonitor, unreachableReason } from "./console/engine_monitor.ts";
import { isClosedConnectionWrite, openDatabase } from "./db/database.ts";
import { isUnavailable } from "./db/db_errors.ts";
import { migrate } from "./db/migrate.ts";
import { createIncidentHub } from "./incidents/incident_hub.ts";
import { createFeedConditions } from "./notify/feed_conditions.ts";
import { createFeedWatch } from "./notify/feed_watch.ts";
import { createNotificationDispatcher } from "./notify/notification_dispatcher.ts";
import { loadNotifyConfig, type NotifyConfig, NotifyConfigError } from "./notify/notify_config.ts";
import { createPruner, type RetentionSettings, retentionSettings } from "./retention/mod.ts";
import { createPlantStreams } from "./simulator/plant_streams.ts";
import { createFrameSender, delay } from "./simulator/send_frame.ts";
import { createSimulator } from "./simulator/simulator.ts";
import { waitForEngine } from "./simulator/wait_for_engine.ts";

let config: ReturnType<typeof parseConfig<typeof backendConfigSchema>>;
let retention: RetentionSettings;
try {
  config = parseConfig(backendConfigSchema, withSecretFiles(readEnv()));
  retention = retentionSettings(config);
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
// Before any instrument is taken; its own lines (an export that failed) obey LOG_LEVEL.
const stopTelemetry = await startTelemetry("backend", { log });
const metrics = createBackendMetrics();

// Who may read and act: settings that do not hang together, or a bad tokens file, stop start-up.
const authProblem = authConfigProblem(config);
if (authProblem) {
  console.error(`backend: ${authProblem}`);
  exit(1);
}
let tokens: TokenStore | undefined;
try {
  tokens =
    config.AUTH_MODE !== "none" && config.API_TOKENS_FILE
      ? await openTokenStore({ path: config.API_TOKENS_FILE, log })
      : undefined;
} catch (error) {
  if (!(error instanceof TokensFileError)) throw error;
  console.error(`backend: ${error.message}`);
  exit(1);
}
const auth = createAuth({
  mode: config.AUTH_MODE,
  tokens,
  sessionSecret: config.SESSION_SECRET,
  sessionMaxAgeMs: config.SESSION_MAX_AGE_H * 3_600_000,
  consoleToken: config.CONSOLE_TOKEN,
  // Behind a TLS-terminating proxy: its origin counts as ours, and https makes cookies Secure.
  publicUrl: config.PUBLIC_URL,
  log,
  // Read per use: the database is opened below, and its client replaced after a failure.
  endedSessions: createEndedSessions(() => database),
});
if (config.AUTH_MODE !== "none" && !config.ALERT_SIGNING_SECRET) {
  log.warn(
    "alerts are accepted unsigned: set ALERT_SIGNING_SECRET (the same on the engine) so only the engine can post them",
  );
}

if (config.AUTH_MODE !== "none" && config.CONSOLE_TOKEN !== undefined) {
  log.warn(
    `CONSOLE_TOKEN is used only with AUTH_MODE=none and is ignored under AUTH_MODE=${config.AUTH_MODE}: operators act with their own ${config.AUTH_MODE === "token" ? "API tokens" : "sign-in"}`,
  );
}

let database: Awaited<ReturnType<typeof openDatabase>>;
try {
  database = await openDatabase({
    url: config.DATABASE_URL,
    pgliteDataDir: config.PGLITE_DATA_DIR,
  });
} catch (error) {
  // Opening the embedded database fails on the folder the operator named: say which and why.
  if (config.DATABASE_URL || config.PGLITE_DATA_DIR === undefined) throw error;
  console.error(`backend: PGLITE_DATA_DIR ${config.PGLITE_DATA_DIR}: ${(error as Error).message}`);
  exit(1);
}
// postgres.js writing onto a connection PostgreSQL closed mid-transaction (isClosedConnectionWrite)
// would end the process from a callback no caller can catch: logged, and the pool replaced as
// after an outage. Any other uncaught exception ends the process as it does without a handler.
process.on("uncaughtException", function closedConnectionWrite(error) {
  if (isClosedConnectionWrite(error)) {
    log.error("database connection closed mid-transaction; its pool is replaced", error);
    database.recover();
    return;
  }
  process.stderr.write(`${error?.stack ?? String(error)}\n`);
  process.exit(1);
});

// A database that is still starting (compose, a restart) gets 30 s before start-up fails.
const migrationDeadline = AbortSignal.timeout(30_000);
// Where the data lives, as an operator restoring a backup looks for it: PGlite's folder (its
// socket's address is new at every start), or DATABASE_URL without its password.
const databaseWhere = config.DATABASE_URL
  ? database.url
  : `pglite:${config.PGLITE_DATA_DIR ?? "memory"}`;
for (;;) {
  try {
    const { applied, version } = await migrate(database.sql);
    log.info("database ready", { database: database.kind, schema_version: version, applied });
    break;
  } catch (error) {
    if (!isUnavailable(error) || migrationDeadline.aborted) {
      log.error("database migration failed", error as Error, { database: databaseWhere });
      await database.close(1).catch(() => {});
      exit(1);
    }
    log.warn("database not reachable yet, retrying", { database: databaseWhere });
    await delay(1000);
  }
}

// People sign in through the company's provider; discovery waits for the first sign-in.
let oidc: Oidc | undefined;
if (config.AUTH_MODE === "oidc") {
  try {
    oidc = createOidc({
      auth,
      issuer: config.OIDC_ISSUER as string,
      clientId: config.OIDC_CLIENT_ID as string,
      clientSecret: config.OIDC_CLIENT_SECRET,
      publicUrl: config.PUBLIC_URL as string,
      roleClaim: config.OIDC_ROLE_CLAIM,
      roleMap: config.OIDC_ROLE_MAP,
      secret: config.SESSION_SECRET,
      log,
      audit: createAuditRepository(database),
    });
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    console.error(`backend: ${error.message}`);
    await database.close(1).catch(() => {});
    exit(1);
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
  supersedeAfterMs: config.INCIDENT_SUPERSEDE_AFTER_S * 1000,
});
notifier.start();
const notifications = notifyConfig ? notifier : undefined;
const engineMonitor = createEngineMonitor({
  engineUrl: config.ENGINE_URL,
  timeoutMs: config.ENGINE_HEALTH_TIMEOUT_MS,
  adminToken: config.ADMIN_TOKEN,
});
// With routes to tell: the engine's feed conditions (streams silent, a running condition's sensor
// in doubt, the engine out of reach), recorded for the dispatcher.
const feedWatch =
  notifyConfig && notifyConfig.routes.length > 0
    ? createFeedWatch({
        engineUrl: config.ENGINE_URL,
        read: () => engineMonitor.statsNow(),
        describe: (error) => unreachableReason(error, config.ENGINE_HEALTH_TIMEOUT_MS),
        conditions: createFeedConditions(database, { graceMs: config.FEED_GRACE_MS }),
        everyMs: config.FEED_WATCH_MS,
        downAfterMs: config.FEED_GRACE_MS,
        log,
      })
    : undefined;
feedWatch?.start();
// Deletes alerts and resolved incidents past their horizons, in small batches beside ingest.
const pruner = createPruner({ database, ...retention, log });
if (retention.enabled) pruner.start();

let draining = false;
const hub = createIncidentHub();
const app = createBackendApp({
  hub,
  auth,
  signInProvider: oidc
    ? { path: "/auth", routes: oidc.routes, endSessionUrl: oidc.endSessionUrl }
    : undefined,
  consoleToken: config.CONSOLE_TOKEN,
  bodyTimeoutMs: config.BODY_TIMEOUT_MS,
  modelActivation: { engineUrl: config.ENGINE_URL, adminToken: config.ADMIN_TOKEN },
  engine: engineMonitor,
  database,
  simulator,
  notifications,
  retention,
  signingSecret: config.ALERT_SIGNING_SECRET,
  log,
  metrics,
  isDraining: () => draining,
});
let server: Awaited<ReturnType<typeof serveApp>>;
try {
  server = await serveApp(app, config.HOST, config.PORT);
} catch (error) {
  const { reason, fix } = listenProblem(error);
  console.error(
    `backend: cannot listen on ${config.HOST}:${config.PORT}: ${reason} (set ${fix === "port" ? "PORT" : "HOST"})`,
  );
  await feedWatch?.stop().catch(() => {});
  await notifier.stop(AbortSignal.timeout(1000)).catch(() => {});
  await pruner.stop(AbortSignal.timeout(1000)).catch(() => {});
  await database.close(1).catch(() => {});
  exit(1);
}
const lifetime = new AbortController();
// Before "backend listening": whoever waits for that line (a launcher, a test, a service manager)
// may signal at once, and a signal with no handler yet ends the process without closing anything.
const stopFor = onShutdownSignal(async function shutdown(signal) {
  log.info("backend stopping", { signal });
  draining = true;
  lifetime.abort(new Error("shutting down"));
  const deadline = AbortSignal.timeout(config.SHUTDOWN_TIMEOUT_MS);
  try {
    await simulator.stop();
    // Live console streams never end on their own; close them so the server can drain.
    hub.close();
    await server.close(deadline);
    await feedWatch?.stop();
    await notifier.stop(deadline);
    await pruner.stop(deadline);
    await database.close(Math.max(1, Math.floor(config.SHUTDOWN_TIMEOUT_MS / 2000)));
    // Telemetry's last flush within 2 s (a collector that is down is retried otherwise).
    await stopTelemetry(AbortSignal.timeout(2000));
    log.info("backend stopped");
    exit(0);
  } catch (error) {
    log.error("backend shutdown failed", error as Error);
    exit(1);
  }
});
// Started by `npm start` / `deno task start`, whose launcher was killed (SIGKILL, which it cannot
// pass on): stop as on SIGTERM rather than keep its port, the database and the simulator running.
watchLauncher(readEnv(), function launcherGone(pid) {
  log.warn("launcher gone: stopping as on SIGTERM", { launcher_pid: pid });
  stopFor("launcher gone");
});
const shownHost =
  config.HOST === "0.0.0.0" || config.HOST === "::"
    ? "localhost"
    : config.HOST.includes(":") && !config.HOST.startsWith("[")
      ? `[${config.HOST}]`
      : config.HOST;
log.info("backend listening", {
  url: `http://${shownHost}:${server.port}`,
  port: server.port,
  runtime: isDeno ? "deno" : "node",
  database: database.kind,
  signed_alerts: config.ALERT_SIGNING_SECRET !== undefined,
  console_token: config.AUTH_MODE === "none" && config.CONSOLE_TOKEN !== undefined,
  auth_mode: config.AUTH_MODE,
  notify_routes: notifyConfig?.routes.map((r) => r.name) ?? [],
  engine_url: config.ENGINE_URL,
});

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
    moves:
      config.SIMULATOR_MOVE_AT_S > 0
        ? [{ at_frame: Math.round(config.SIMULATOR_MOVE_AT_S * config.SIMULATOR_RATE_HZ) }]
        : [],
  };
  log.info("simulator waiting for the engine", { engine_url: config.ENGINE_URL });
  // An operator who started or stopped a run while the engine was down has decided: it stands.
  waitForEngine(config.ENGINE_URL, lifetime.signal)
    .then(() => simulator.startUnlessOperated(plan))
    .then((started) => {
      if (!started)
        log.info("simulator start-up plan skipped: an operator started or stopped a run");
    })
    // A plan the simulator refuses (past its memory budget) says why; a shutdown says nothing.
    .catch((error) => {
      if (!lifetime.signal.aborted) log.error("simulator start-up plan refused", error as Error);
    });
}
