// Reads the engine's readiness and counters server-side for the console's Health page.
import * as v from "valibot";
import { type EngineReady, engineReadySchema } from "../../contracts/health.ts";
import { containedFetch } from "../../telemetry/contained_fetch.ts";
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
  /** Streams that have sent nothing for longer than the engine's stale limit (a single process). */
  silent: v.optional(v.array(v.object({ stream_id: v.string(), last_accepted_at: v.string() }))),
  /** Each served model's own counters (a single process or worker; an ingest replica has none). */
  models: v.optional(
    v.array(
      v.object({
        name: v.string(),
        frames: v.optional(v.object({ accepted: v.optional(v.number()), scored: v.number() })),
        queue: v.optional(v.object({ depth: v.number(), capacity: v.number() })),
        latency_ms: v.optional(v.object({ p50: v.number(), p99: v.number() })),
      }),
    ),
  ),
  /**
   * Streams whose machine is stopped (a model's running condition), and for a stop whose other
   * sensors still read as running, since when, the condition's sensor and their share in range.
   */
  machine_off: v.optional(
    v.array(
      v.object({
        stream_id: v.string(),
        since: v.string(),
        reads_running: v.optional(
          v.object({ since: v.string(), sensor: v.string(), in_range: v.number() }),
        ),
      }),
    ),
  ),
  /**
   * The frame bus (an ingest replica under scale-out): the partitions no live worker owns and the
   * frames waiting on them unscored. Absent from a single process and from earlier engines.
   */
  bus: v.optional(
    v.object({
      unowned_partitions: v.optional(v.array(v.number())),
      unscored_unowned: v.optional(v.number()),
    }),
  ),
});

export type EngineStats = v.InferOutput<typeof statsSchema>;
export type MachineOff = NonNullable<EngineStats["machine_off"]>[number];
export type SilentStream = NonNullable<EngineStats["silent"]>[number];

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
  /**
   * The Now page's deadline for `/stats` (default the shorter of 500 ms and `timeoutMs`): the
   * page is read often, so a hung engine costs it this once, not `timeoutMs` on every load.
   */
  nowTimeoutMs?: number;
  /** While the engine is unreachable the Now page asks it again at most this often (default 5 s). */
  recheckMs?: number;
}

/**
 * What the Now page shows of the engine: its stopped machines, or that it cannot be reached (why,
 * since when this backend saw it so) with the stopped machines of the last answer it gave.
 */
export type EngineNow =
  | { reachable: true; stopped: MachineOff[] | null; silent?: SilentStream[] }
  | {
      reachable: false;
      reason: string;
      /** ISO time of the first failed read in a row. */
      since: string;
      /** The stopped machines of the last answer, and when it came; absent before any. */
      lastKnown?: { stopped: MachineOff[]; at: string };
    };

/**
 * Reads `ENGINE_URL/health/ready` and `/stats`. The rate comes from the previous read when it is
 * recent (under a minute), otherwise from a second read `sampleGapMs` later, so the browser never
 * calls the engine and the page still shows frames/s on its first load.
 *
 * @example const monitor = createEngineMonitor({ engineUrl }); const health = await monitor.read();
 */
export function createEngineMonitor(options: EngineMonitorOptions) {
  const { engineUrl, timeoutMs = 2000, sampleGapMs = 1000, recheckMs = 5000 } = options;
  const nowTimeoutMs = options.nowTimeoutMs ?? Math.min(500, timeoutMs);
  const fetcher = options.fetch ?? containedFetch;
  const now = options.now ?? (() => Date.now());
  let previous: { at: number; scored: number } | undefined;
  const readModels = createEngineModelsReader({
    engineUrl,
    adminToken: options.adminToken,
    fetch: fetcher,
    timeoutMs,
  });

  // Reachability as the last reads found it, shared by both pages.
  let down: { since: number; reason: string; checkedAt: number } | undefined;
  let lastStopped: { stopped: MachineOff[]; at: number } | undefined;

  function reached() {
    down = undefined;
  }
  function failed(error: unknown, ms: number) {
    const at = now();
    down = { since: down?.since ?? at, reason: unreachableReason(error, ms), checkedAt: at };
  }

  async function getJson(path: string, ms = timeoutMs): Promise<{ status: number; body: unknown }> {
    const res = await fetcher(new URL(path, engineUrl), { signal: AbortSignal.timeout(ms) });
    return { status: res.status, body: await res.json() };
  }

  async function readStats(ms = timeoutMs): Promise<EngineStats | null> {
    const { status, body } = await getJson("/stats", ms);
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
      reached();
    } catch (error) {
      failed(error, timeoutMs);
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
      if (stats?.machine_off) lastStopped = { stopped: stats.machine_off, at: now() };
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
   * The engine's stopped machines from one read of `/stats` within `nowTimeoutMs` (the Now page:
   * no rate, no models), or why the engine cannot be reached. While it cannot, the engine is asked
   * again at most every `recheckMs`; loads in between get the last failure at once.
   */
  async function nowState(): Promise<EngineNow> {
    if (!down || now() - down.checkedAt >= recheckMs) {
      try {
        const stats = await readStats(nowTimeoutMs);
        reached();
        if (stats?.machine_off) lastStopped = { stopped: stats.machine_off, at: now() };
        return {
          reachable: true,
          stopped: stats?.machine_off ?? null,
          ...(stats?.silent ? { silent: stats.silent } : {}),
        };
      } catch (error) {
        failed(error, nowTimeoutMs);
      }
    }
    const d = down as NonNullable<typeof down>;
    return {
      reachable: false,
      reason: d.reason,
      since: new Date(d.since).toISOString(),
      ...(lastStopped
        ? {
            lastKnown: {
              stopped: lastStopped.stopped,
              at: new Date(lastStopped.at).toISOString(),
            },
          }
        : {}),
    };
  }

  /**
   * One read of `/stats` within `timeoutMs` for the feed watch (`../notify/feed_watch.ts`): the
   * counters, or null when the engine answered without them (not 200, another shape); throws
   * when it cannot be reached.
   */
  async function statsNow(): Promise<EngineStats | null> {
    return await readStats();
  }

  return { read, nowState, statsNow };
}

export type EngineMonitor = ReturnType<typeof createEngineMonitor>;

/** Why a read failed, in words: "no answer within 500 ms", "connection refused (ECONNREFUSED)". */
export function unreachableReason(error: unknown, ms: number): string {
  const e = error as Error & { cause?: { code?: string; message?: string } };
  if (e.name === "TimeoutError" || e.name === "AbortError") return `no answer within ${ms} ms`;
  const code = e.cause?.code;
  if (code === "ECONNREFUSED") return "connection refused (ECONNREFUSED)";
  if (code) return `${e.cause?.message ?? e.message} (${code})`;
  if (e.cause?.message) return `${e.message}: ${e.cause.message}`;
  if (e instanceof SyntaxError) return "not a JSON answer";
  return e.message;
}
