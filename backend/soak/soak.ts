// The soak run: the simulator at a multiple of real rate through a real engine into the backend (retention optional), with accounting.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Hono } from "hono";
import postgres from "postgres";
import { serveApp } from "../_runtime.ts";
import { freePort } from "../_test/free_port.ts";
import { NODE_TS, spawnService, waitFor } from "../_test/spawn_service.ts";
import { createBackendApp } from "../app.ts";
import { openDatabase } from "../db/database.ts";
import { migrate } from "../db/migrate.ts";
import { readDatabaseHealth } from "../retention/database_health.ts";
import { createPruner, type PruneRun } from "../retention/pruner.ts";
import { createPlantStreams } from "../simulator/plant_streams.ts";
import { createFrameSender, delay } from "../simulator/send_frame.ts";
import { createSimulator } from "../simulator/simulator.ts";
import { insertBacklog } from "./backlog.ts";
import { ingestLatency } from "./ingest_latency.ts";

export interface SoakOptions {
  durationS: number;
  rateHz: number;
  anomalyEveryS: number;
  sampleEveryS: number;
  databaseUrl?: string;
  /** The engine's ALERT_MODE (default `incident`); `frame` sends an alert per anomalous window. */
  alertMode?: "incident" | "frame";
  /** Retention on: the pruner runs beside ingest (on PostgreSQL in a schema of the soak's own). */
  retention?: {
    alertsDays: number;
    incidentsDays: number;
    everyS: number;
    batchSize: number;
    /** Alerts past the horizon (with 10 features of evidence each) stored before the run. */
    backlog: number;
  };
  onSample?: (sample: SoakSample) => void;
}

export interface SoakSample {
  t_s: number;
  frames_sent: number;
  alerts_stored: number;
  /** Of them, deleted by the pruner so far. */
  alerts_pruned: number;
  /** This schema's tables with indexes and TOAST (PGlite: about all of the database). */
  db_mb: number;
  engine_rss_mb: number;
  backend_rss_mb: number;
}

interface EngineStats {
  frames: { accepted: number; scored: number };
  alerts: { generated: number; delivered: number; outbox: number };
  rss_bytes: number;
}

const mb = (bytes: number) => Math.round(bytes / 1024 / 102.4) / 10;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

/** Runs the soak and returns its accounting; nothing is asserted here, the CLI judges. */
export async function runSoak(options: SoakOptions) {
  const dataDir = await mkdtemp(join(tmpdir(), "soak-engine-"));
  const retention = options.retention;
  // With retention on, every alert in the database is the soak's: stored = kept + pruned - backlog.
  const schema =
    retention && options.databaseUrl ? `soak_${process.pid}_${Date.now().toString(36)}` : undefined;
  const admin = schema ? postgres(options.databaseUrl!, { max: 1, onnotice: () => {} }) : undefined;
  if (schema) await admin!.unsafe(`CREATE SCHEMA ${schema}`);
  const database = await openDatabase({ url: options.databaseUrl, searchPath: schema });
  await migrate(database.sql);
  const backlog = retention?.backlog
    ? await insertBacklog(database.sql, {
        alerts: retention.backlog,
        features: 10,
        ageS: 2 * retention.alertsDays * 86_400,
      })
    : 0;
  const runs: PruneRun[] = [];
  const pruner = retention
    ? createPruner({
        database,
        alertsDays: retention.alertsDays,
        incidentsDays: retention.incidentsDays,
        everyMs: retention.everyS * 1000,
        batchSize: retention.batchSize,
        onRun: (run) => runs.push(run),
      })
    : undefined;
  const pruned = () => runs.reduce((n, r) => n + r.alerts, 0);
  const latency = ingestLatency(() => pruner?.status().running ?? false);
  const enginePort = await freePort();
  const engineUrl = `http://127.0.0.1:${enginePort}`;
  const simulator = createSimulator({
    streams: createPlantStreams({ nFeatures: 25_000, seed: 99 }),
    send: createFrameSender({ engineUrl, maxRetries: 8 }),
  });
  const timed = new Hono();
  timed.use("/api/v1/alert", latency.middleware);
  timed.route("/", createBackendApp({ database, simulator }));
  const server = await serveApp(timed, "127.0.0.1", 0);
  const engine = spawnService([...NODE_TS, "engine/main.ts"], {
    APP_HOST: "127.0.0.1",
    APP_PORT: String(enginePort),
    NESTJS_URL: `http://127.0.0.1:${server.port}`,
    DEFAULT_DEVICE: "cpu",
    DATA_DIR: dataDir,
    LOG_LEVEL: "warn",
    ALERT_MODE: options.alertMode ?? "incident",
  });
  const engineStats = async (): Promise<EngineStats> => (await fetch(`${engineUrl}/stats`)).json();
  const storedSince = new Date();
  const stored = async () =>
    retention
      ? ((await database.sql`SELECT count(*)::int AS n FROM alert`)[0].n as number) +
        pruned() -
        backlog
      : ((
          await database.sql`SELECT count(DISTINCT alert_id)::int AS n FROM alert WHERE received_at >= ${storedSince}`
        )[0].n as number);
  const samples: SoakSample[] = [];
  try {
    const ready = await waitFor(
      async () => {
        const res = await fetch(`${engineUrl}/health/ready`);
        return res.ok ? ((await res.json()) as { model: { window_size: number } }) : undefined;
      },
      "engine ready",
      120_000,
      500,
    );
    // The first window_size - 1 frames of a stream fill its window and are not scored.
    const warmUp = ready.model.window_size - 1;
    await fetch(`${engineUrl}/stats/reset`, { method: "POST" });
    const started = performance.now();
    await simulator.start({
      rate_hz: options.rateHz,
      duration_s: options.durationS,
      streams: 1,
      anomaly_every_s: options.anomalyEveryS,
    });
    pruner?.start();
    const sample = async () => {
      const s: SoakSample = {
        t_s: Math.round((performance.now() - started) / 1000),
        frames_sent: simulator.status().frames_sent,
        alerts_stored: await stored(),
        alerts_pruned: pruned(),
        db_mb: mb((await readDatabaseHealth(database, AbortSignal.timeout(30_000))).tables_bytes),
        engine_rss_mb: mb((await engineStats()).rss_bytes),
        backend_rss_mb: mb(process.memoryUsage().rss),
      };
      samples.push(s);
      options.onSample?.(s);
    };
    while (simulator.status().running) {
      await Promise.race([delay(options.sampleEveryS * 1000), simulator.finished()]);
      await sample();
    }
    // Drained: every accepted frame scored and every generated alert delivered.
    const final = await waitFor(
      async () => {
        const s = await engineStats();
        return s.frames.scored >= s.frames.accepted - warmUp &&
          s.alerts.delivered >= s.alerts.generated
          ? s
          : undefined;
      },
      "the engine to drain",
      60_000,
    );
    const status = simulator.status();
    await pruner?.stop();
    return {
      duration_s: options.durationS,
      rate_hz: options.rateHz,
      frames_sent: status.frames_sent,
      frames_accepted_by_engine: final.frames.accepted,
      frames_scored: final.frames.scored,
      warm_up_frames: warmUp,
      engine_answers: status.answers,
      retries: status.retries,
      anomalies_injected: status.injected.length,
      alerts_generated: final.alerts.generated,
      alerts_delivered: final.alerts.delivered,
      alerts_stored: await stored(),
      alerts_pruned: pruned(),
      retention: retention
        ? {
            ...retention,
            runs: runs.length,
            failed_runs: runs.filter((r) => r.error).length,
            incidents_pruned: runs.reduce((n, r) => n + r.incidents, 0),
            run_ms_p50: median(runs.map((r) => r.duration_ms)),
            run_ms_max: Math.max(0, ...runs.map((r) => r.duration_ms)),
          }
        : null,
      ingest_latency: latency.summary(),
      samples,
    };
  } finally {
    await pruner?.stop();
    await simulator.stop();
    await engine.stop("SIGTERM");
    await server.close(AbortSignal.timeout(2000));
    await database.close();
    if (schema) await admin!.unsafe(`DROP SCHEMA ${schema} CASCADE`);
    await admin?.end();
    await rm(dataDir, { recursive: true, force: true });
  }
}
