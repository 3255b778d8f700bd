// Reads the engine's readiness and counters server-side for the console's Health page.
import * as v from "valibot";
import { type EngineReady, engineReadySchema } from "../../contracts/health.ts";
import { createEngineModelsReader, type EngineModels } from "./engine_models.ts";

// The parts of the engine's `GET /stats` the page shows; the engine may add more.
const statsSchema = v.object({
  frames: v.object({ accepted: v.number(), rejected: v.number(), scored: v.number() }),
  queue: v.object({ depth: v.number(), capacity: v.number() }),
  latency_ms: v.object({ count: v.number(), p50: v.number(), p99: v.number() }),
  inference_ms: v.optional(v.object({ p50: v.number(), p99: v.number() })),
  alerts: v.optional(
    v.object({ generated: v.number(), delivered: v.number(), outbox: v.number() }),
  ),
  rss_bytes: v.optional(v.number()),
  /** Streams whose machine is stopped (a model's running condition). */
  machine_off: v.optional(v.array(v.object({ stream_id: v.string(), since: v.string() }))),
});

export type EngineStats = v.InferOutput<typeof statsSchema>;
export type MachineOff = NonNullable<EngineStats["machine_off"]>[number];

/** What the Health page shows; `error` says why a part is missing. */
export interface EngineHealth {
  engine_url: string;
  reachable: boolean;
  ready: EngineReady | null;
  stats: EngineStats | null;
  /** Scored frames per second between the last two reads (null until there are two). */
  frames_per_s: number | null;
  error?: string;
  /** The models it serves (`GET /models`), or why they are missing. */
  models: EngineModels;
}

export interface EngineMonitorOptions {
  engineUrl: string;
  fetch?: typeof fetch;
  timeoutMs?: number;
  /** The engine's `ADMIN_TOKEN`, sent to `GET /models` only. */
  adminToken?: string;
  now?: () => number;
  /** Wait before a second read when there is no recent one to compute a rate from. */
  sampleGapMs?: number;
}

/**
 * Reads `ENGINE_URL/health/ready` and `/stats`. The rate comes from the previous read when it is
 * recent (under a minute), otherwise from a second read `sampleGapMs` later, so the browser never
 * calls the engine and the page still shows frames/s on its first load.
 *
 * @example const monitor = createEngineMonitor({ engineUrl }); const health = await monitor.read();
 */
export function createEngineMonitor(options: EngineMonitorOptions) {
  const { engineUrl, timeoutMs = 2000, sampleGapMs = 1000 } = options;
  const fetcher = options.fetch ?? fetch;
  const now = options.now ?? (() => Date.now());
  let previous: { at: number; scored: number } | undefined;
  const readModels = createEngineModelsReader({
    engineUrl,
    adminToken: options.adminToken,
    fetch: fetcher,
    timeoutMs,
  });

  async function getJson(path: string): Promise<{ status: number; body: unknown }> {
    const res = await fetcher(new URL(path, engineUrl), { signal: AbortSignal.timeout(timeoutMs) });
    return { status: res.status, body: await res.json() };
  }

  async function readStats(): Promise<EngineStats | null> {
    const { status, body } = await getJson("/stats");
    if (status !== 200) return null;
    const parsed = v.safeParse(statsSchema, body);
    return parsed.success ? parsed.output : null;
  }

  /** The engine's health, its counters and its models, read at once. */
  async function read(): Promise<EngineHealth> {
    const [health, models] = await Promise.all([readHealth(), readModels()]);
    return { ...health, models };
  }

  async function readHealth(): Promise<Omit<EngineHealth, "models">> {
    const base = { engine_url: engineUrl, frames_per_s: null };
    let ready: EngineReady | null = null;
    try {
      const answer = await getJson("/health/ready");
      const parsed = v.safeParse(engineReadySchema, answer.body);
      ready = parsed.success ? parsed.output : null;
    } catch (error) {
      return {
        ...base,
        reachable: false,
        ready: null,
        stats: null,
        error: (error as Error).message,
      };
    }
    try {
      let stats = await readStats();
      if (!stats) return { ...base, reachable: true, ready, stats: null, error: "no /stats" };
      let at = now();
      let fps: number | null = null;
      if (!previous || at - previous.at > 60_000 || at - previous.at < 200) {
        previous = { at, scored: stats.frames.scored };
        await new Promise((resolve) => setTimeout(resolve, sampleGapMs));
        stats = (await readStats()) ?? stats;
        at = now();
      }
      if (at > previous.at && stats.frames.scored >= previous.scored) {
        fps = ((stats.frames.scored - previous.scored) * 1000) / (at - previous.at);
      }
      previous = { at, scored: stats.frames.scored };
      return { ...base, reachable: true, ready, stats, frames_per_s: fps };
    } catch (error) {
      return { ...base, reachable: true, ready, stats: null, error: (error as Error).message };
    }
  }

  /**
   * The engine's stopped machines from one read of `/stats` (the Now page: no rate, no models);
   * null when the engine does not answer.
   */
  async function machineOff(): Promise<MachineOff[] | null> {
    try {
      return (await readStats())?.machine_off ?? null;
    } catch {
      return null;
    }
  }

  return { read, machineOff };
}

export type EngineMonitor = ReturnType<typeof createEngineMonitor>;
