// What recording the training history costs the scoring path: the same engine with history on and off, alternated.
import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startEngineProcess } from "./engine_process.ts";
import type { BenchFrames } from "./frames.ts";
import { type Client, closedLoop, createClient, type LoadOutcome, openLoop } from "./load.ts";
import { round } from "./micro.ts";

// biome-ignore lint/suspicious/noExplicitAny: /stats as the engine serves it
export type Stats = any;

const BINARY = { "content-type": "application/octet-stream" };

/** `/stats` once every accepted frame is scored, or once the count stops moving for 0.5 s. */
export async function drained(client: Client): Promise<Stats> {
  const deadline = AbortSignal.timeout(60_000);
  let last = -1;
  let stable = 0;
  for (;;) {
    const stats: Stats = await client.getJson("/stats");
    if (stats.queue.depth === 0 && stats.frames.scored >= stats.frames.accepted) return stats;
    // A stream's first frames complete no window: the count stops short of accepted.
    stable = stats.frames.scored === last && stats.queue.depth === 0 ? stable + 1 : 0;
    if (stable >= 20 || deadline.aborted) return stats;
    last = stats.frames.scored;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Bytes of every file under `dir` (0 when it does not exist). */
/** The bytes under `dir` once two reads 250 ms apart agree and something is there (10 s at most). */
async function settledBytes(dir: string): Promise<number> {
  let last = -1;
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; ) {
    const now = await dirBytes(dir);
    if (now > 0 && now === last) return now;
    last = now;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return last;
}

export async function dirBytes(dir: string): Promise<number> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  let bytes = 0;
  for (const e of entries) {
    if (e.isFile())
      bytes += (await stat(join(e.parentPath, e.name)).catch(() => ({ size: 0 }))).size;
  }
  return bytes;
}

export interface HotPathRun {
  history: "on" | "off";
  /** Closed loop, binary frames, one stream per connection: scored frames / time to drain. */
  saturation: { frames_per_s: number; load: LoadOutcome };
  /** One binary stream, open loop: reception → inference complete (`/stats`). */
  low_rate: {
    rate: number;
    count: number;
    p50: number;
    p99: number;
    max: number;
    load: LoadOutcome;
  };
  history_bytes: number;
  rss_mb: number;
}

/**
 * One engine (`QUEUE_MAX_SIZE=100`, a fresh `HISTORY_DIR`; off: `HISTORY_MAX_BYTES=0`):
 * warm-up, then binary frames in a closed loop on `connections` streams for `saturationS`,
 * then one stream at `rate` frames/s for `lowRateS`.
 */
export async function hotPathRun(
  history: boolean,
  frames: BenchFrames,
  o: { connections: number; saturationS: number; rate: number; lowRateS: number },
): Promise<HotPathRun> {
  const historyDir = await mkdtemp(join(tmpdir(), "bench-history-"));
  const engine = await startEngineProcess({
    QUEUE_MAX_SIZE: "100",
    HISTORY_DIR: historyDir,
    ...(history ? {} : { HISTORY_MAX_BYTES: "0" }),
  });
  const client = createClient(engine.port);
  try {
    const streams = Array.from({ length: o.connections }, (_, k) => ({
      bodies: frames.binary,
      headers: { ...BINARY, "x-stream-id": `bench-${k}` },
    }));
    await closedLoop(client, streams, { seconds: 2 });
    await drained(client);
    await client.getJson("/stats/reset");
    const start = performance.now();
    const load = await closedLoop(client, streams, { seconds: o.saturationS });
    const saturated = await drained(client);
    const elapsed = (performance.now() - start) / 1000;
    await client.getJson("/stats/reset");
    const slowHeaders = { ...BINARY, "x-stream-id": "slow-0" };
    const slowLoad = await openLoop(client, frames.binary, slowHeaders, {
      rate: o.rate,
      seconds: o.lowRateS,
    });
    const slow = await drained(client);
    // The recorder writes on a timer: wait until what it holds is on disk (the size settles).
    const historyBytes = history ? await settledBytes(historyDir) : await dirBytes(historyDir);
    return {
      history: history ? "on" : "off",
      saturation: { frames_per_s: round(saturated.frames.scored / elapsed, 1), load },
      low_rate: {
        rate: o.rate,
        count: slow.latency_ms.count,
        p50: slow.latency_ms.p50,
        p99: slow.latency_ms.p99,
        max: slow.latency_ms.max,
        load: slowLoad,
      },
      history_bytes: historyBytes,
      rss_mb: round(((await engine.rss()) ?? 0) / 2 ** 20, 1),
    };
  } finally {
    client.close();
    await engine.stop();
    await rm(historyDir, { recursive: true, force: true });
  }
}

export interface HotPathResult {
  runs: HotPathRun[];
  /** Mean on / mean off, and each adjacent pair's ratio (off then on), which shows the noise. */
  saturation_ratio_on_off: number;
  saturation_pair_ratios: number[];
  low_rate_p50_ms: { on: number[]; off: number[] };
  low_rate_p99_ms: { on: number[]; off: number[] };
}

/** Off, on, off, on, ... (`pairs` times): the order alternates so drift shows up as noise, not as a difference. */
export async function historyHotPath(
  frames: BenchFrames,
  o: { pairs: number; connections: number; saturationS: number; rate: number; lowRateS: number },
  log: (line: string) => void,
): Promise<HotPathResult> {
  const runs: HotPathRun[] = [];
  for (let p = 0; p < o.pairs; p++) {
    for (const on of [false, true]) {
      log(`history ${on ? "on" : "off"} (pair ${p + 1}/${o.pairs})...`);
      const run = await hotPathRun(on, frames, o);
      log(
        `  ${run.saturation.frames_per_s} frames/s; at ${o.rate}/s p50 ${run.low_rate.p50} p99 ${run.low_rate.p99} ms; history ${round(run.history_bytes / 2 ** 20, 1)} MiB`,
      );
      runs.push(run);
    }
  }
  const of = (h: "on" | "off") => runs.filter((r) => r.history === h);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const rate = (h: "on" | "off") => mean(of(h).map((r) => r.saturation.frames_per_s));
  const pairs = of("on").map((on, i) =>
    round(on.saturation.frames_per_s / of("off")[i].saturation.frames_per_s, 3),
  );
  return {
    runs,
    saturation_ratio_on_off: round(rate("on") / rate("off"), 3),
    saturation_pair_ratios: pairs,
    low_rate_p50_ms: {
      on: of("on").map((r) => r.low_rate.p50),
      off: of("off").map((r) => r.low_rate.p50),
    },
    low_rate_p99_ms: {
      on: of("on").map((r) => r.low_rate.p99),
      off: of("off").map((r) => r.low_rate.p99),
    },
  };
}
