// The engine serving two models for the benchmark, with each model's latency read apart from its log.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type EngineProcess, startEngineProcess } from "./engine_process.ts";
import { type LaneLatency, LogCursor, laneLatencies } from "./lane_latency.ts";
import { type Client, createClient } from "./load.ts";
import { round } from "./micro.ts";
import { BIG_MODEL, SMALL_MODEL, SMALL_PREFIX } from "./two_model_registry.ts";

export const ADMIN_TOKEN = "bench-admin-token-0123";

// biome-ignore lint/suspicious/noExplicitAny: /stats as the engine serves it
export type Stats = any;

/** What a phase's work returned, with what the engine did meanwhile. */
export interface Phase<T> {
  work: T;
  /** Per model: windows scored (per stream) and reception → inference latency. */
  lanes: Record<string, LaneLatency>;
  /** `/stats`, both models together. */
  all: { accepted: number; scored: number; p50: number; p99: number; max: number };
  rss_max_mb: number;
}

export interface TwoModelEngine {
  engine: EngineProcess;
  client: Client;
  /** `/stats` once every accepted frame is scored (the queues empty, the count still for 200 ms). */
  drained(): Promise<Stats>;
  /**
   * One measured phase: `/stats` reset, `work` run, every accepted frame scored; what the
   * engine saw in it, per model (from its log) and in all (`/stats`), and its RSS at most.
   */
  phase<T>(work: () => Promise<T>): Promise<Phase<T>>;
  stop(): Promise<void>;
}

/**
 * The engine on `modelDir`, routing `line-b-*` streams to the small model and the rest to the
 * committed one, `QUEUE_MAX_SIZE=100` (per model) unless `env` says otherwise. It logs at debug
 * level into a file (one `batch scored` line per batch, naming its model): `/stats` sums the
 * models' latencies, the log keeps them apart.
 */
export async function startTwoModelEngine(
  modelDir: string,
  env: Record<string, string>,
): Promise<TwoModelEngine> {
  const logDir = await mkdtemp(join(tmpdir(), "bench-engine-log-"));
  let engine: EngineProcess;
  try {
    engine = await startEngineProcess(
      {
        QUEUE_MAX_SIZE: "100",
        ...env,
        MODEL_DIR: modelDir,
        DEFAULT_MODEL_NAME: BIG_MODEL,
        MODEL_ROUTES: `${SMALL_PREFIX}*=${SMALL_MODEL}`,
        ADMIN_TOKEN,
        LOG_LEVEL: "debug",
      },
      120_000,
      join(logDir, "engine.log"),
    );
  } catch (error) {
    await rm(logDir, { recursive: true, force: true });
    throw error;
  }
  const running = engine;
  const client = createClient(engine.port, 32, ADMIN_TOKEN);
  const log = new LogCursor(join(logDir, "engine.log"));

  async function drained(): Promise<Stats> {
    const deadline = AbortSignal.timeout(120_000);
    let same = 0;
    let last = -1;
    for (;;) {
      const stats: Stats = await client.getJson("/stats");
      if (stats.queue.depth === 0 && stats.frames.scored === last) same++;
      else same = 0;
      if (same >= 8 || deadline.aborted) return stats;
      last = stats.frames.scored;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  async function phase<T>(work: () => Promise<T>): Promise<Phase<T>> {
    await client.getJson("/stats/reset");
    await log.next();
    let rssMax = 0;
    const sampler = setInterval(async () => {
      rssMax = Math.max(rssMax, (await running.rss()) ?? 0);
    }, 250);
    try {
      const done = await work();
      const stats = await drained();
      const { p50, p99, max } = stats.latency_ms;
      return {
        work: done,
        lanes: laneLatencies(await log.next()),
        all: { accepted: stats.frames.accepted, scored: stats.frames.scored, p50, p99, max },
        rss_max_mb: round(rssMax / 2 ** 20, 1),
      };
    } finally {
      clearInterval(sampler);
    }
  }

  return {
    engine,
    client,
    drained,
    phase,
    async stop() {
      client.close();
      await running.stop();
      await rm(logDir, { recursive: true, force: true });
    },
  };
}
