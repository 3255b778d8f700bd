// `npm run bench -- --context`: what incident context costs: alert size and build time, history memory, per-frame cost.
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { parseModelMetadata } from "../../contracts/model.ts";
import { createPlant } from "../../models/signal/mod.ts";
import type { IncidentEvent, SensorEvidence } from "../../scoring/incident_tracker.ts";
import { type AlertContext, buildIncidentAlert } from "../alert/build_alert.ts";
import { HistoryStore } from "../evidence/history_store.ts";
import { IncidentEvidence } from "../evidence/incident_evidence.ts";
import { crossSubspaceFromOnnx } from "../evidence/model_subspace.ts";
import { startEngineProcess } from "./engine_process.ts";
import { makeBenchFrames } from "./frames.ts";
import { type Client, createClient, type LoadStream, openLoops } from "./load.ts";

const MODEL = fileURLToPath(new URL("../../models/featurewise_ocsvm", import.meta.url));
const T0 = Date.UTC(2026, 10, 24, 9);

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};
const r3 = (x: number) => Math.round(x * 1000) / 1000;
const mb = (bytes: number) => Math.round(bytes / 2 ** 20);

export interface ContextOptions {
  quick: boolean;
  /** Defaults of `EVIDENCE_HISTORY_FRAMES`, `EVIDENCE_HISTORY_MAX_MB`, `EVIDENCE_ALERT_MAX_BYTES`. */
  frames: number;
  maxMb: number;
  alertMaxBytes: number;
  maxAlertFeatures: number;
}

/**
 * Measures, in this process, on the committed default model and its simulated plant:
 * the bytes and build time of `opened` alerts (p50/p99) with history and related sensors for
 * 1..`maxAlertFeatures` listed sensors; the RSS of 1,000 live streams fed round-robin at the
 * default history and budget, how many of them hold history and how much, and who takes the
 * rings of streams that go quiet; what keeping a frame costs each frame on its way from
 * reception to inference (history on vs off: the only work the hot path gains); and, through the
 * engine process, the reception → inference latency with history on and off back to back.
 */
export async function measureContext(o: ContextOptions) {
  const meta = parseModelMetadata(JSON.parse(await readFile(`${MODEL}.json`, "utf8")));
  const F = meta.n_features;
  const subspace = crossSubspaceFromOnnx(await readFile(`${MODEL}.onnx`), F);
  const plant = createPlant({
    nFeatures: F,
    seed: (meta.training.data as { plant_seed?: number }).plant_seed,
  });
  const frames: Float32Array[] = [];
  for (let t = 0; t < o.frames; t++) frames.push(Float32Array.from(plant.next()));

  // Alert size and build time: one stream's full history, an incident opened 30 frames back.
  const store = new HistoryStore({ frames: o.frames, features: F, maxBytes: o.maxMb * 2 ** 20 });
  for (const [t, row] of frames.entries()) store.record("line-1", T0 + t * 1000, row);
  const evidence = new IncidentEvidence({
    store,
    featureNames: meta.feature_names,
    windowSize: meta.window_size,
    typical: meta.typical,
    baseline: meta.baseline,
    subspace,
    maxBytes: o.alertMaxBytes,
  });
  const ctx: AlertContext = {
    featureNames: meta.feature_names,
    statistics: meta.statistics,
    typical: meta.typical,
    threshold: 0.9,
    modelName: meta.name,
    modelVersion: meta.version,
  };
  const end = T0 + (o.frames - 1) * 1000;
  const sizes: Record<string, { bytes: number[]; ms: number[] }> = {};
  const listedCounts = [1, 4, 32, o.maxAlertFeatures];
  const rounds = o.quick ? 5 : 20;
  for (const listed of listedCounts) {
    const s: { bytes: number[]; ms: number[] } = { bytes: [], ms: [] };
    sizes[`listed_${listed}`] = s;
    for (let r = 0; r < rounds; r++) {
      const sensors: SensorEvidence[] = Array.from({ length: listed }, (_, i) => {
        const f = (r * 7919 + i * 104_729) % F;
        return {
          feature_idx: f,
          score: 1,
          severity: 30 - i * 0.01,
          statistic: 0,
          window: frames.slice(-meta.window_size).map((row) => row[f]),
        };
      });
      const event: IncidentEvent = {
        event: "opened",
        incidentId: "7c1f3d8e-5a2b-5c4d-8e9f-0a1b2c3d4e5f",
        streamId: "line-1",
        startedAt: end - 30_000,
        timestamp: end,
        sensorCount: listed,
        sensors,
        maxSeverity: 30,
      };
      const t0 = performance.now();
      const body = JSON.stringify(
        buildIncidentAlert(ctx, event, { latencyMs: 1, now: end }, evidence.build(event)),
      );
      s.ms.push(performance.now() - t0);
      s.bytes.push(body.length);
    }
  }
  const alert = Object.fromEntries(
    Object.entries(sizes).map(([k, s]) => [
      k,
      {
        bytes_p50: quantile(s.bytes, 0.5),
        bytes_p99: quantile(s.bytes, 0.99),
        build_ms_p50: r3(quantile(s.ms, 0.5)),
        build_ms_p99: r3(quantile(s.ms, 0.99)),
      },
    ]),
  );

  // 1,000 live streams of F sensors fed round-robin at 1 Hz (a clock that moves a second a
  // round), at the default history and budget: first `rounds1k` rounds, then on until the rings
  // are full (the RSS the budget allows), then the streams holding rings go quiet while the
  // others go on, past the idle time (who takes their rings).
  const rounds1k = o.quick ? 5 : 30;
  globalThis.gc?.();
  const rssBefore = process.memoryUsage().rss;
  let now = 0;
  const live = new HistoryStore({
    frames: o.frames,
    features: F,
    maxBytes: o.maxMb * 2 ** 20,
    clock: () => now,
  });
  // Per frame: one that is kept (copied into a ring), one whose stream has no ring.
  const keptUs: number[] = [];
  const ringlessUs: number[] = [];
  const feed = (t: number, streams: (k: number) => boolean, timed = false) => {
    for (let k = 0; k < 1000; k++) {
      if (!streams(k)) continue;
      const ringless = live.ringless;
      const t0 = performance.now();
      live.record(`bench-${k}`, T0 + t * 1000, frames[(t + k) % frames.length]);
      const us = (performance.now() - t0) * 1000;
      if (timed) (live.ringless === ringless ? keptUs : ringlessUs).push(us);
    }
    now += 1000;
  };
  const all = () => true;
  /** How many streams hold history at frame time `t`, and the fewest and most frames one holds. */
  const held = (t: number) => {
    const kept: number[] = [];
    for (let k = 0; k < 1000; k++) {
      const n = live.upTo(`bench-${k}`, T0 + t * 1000)?.length ?? 0;
      if (n > 0) kept.push(n);
    }
    return {
      streams_with_history: kept.length,
      frames_kept_min: kept.length ? Math.min(...kept) : 0,
      frames_kept_max: kept.length ? Math.max(...kept) : 0,
    };
  };
  let t = 0;
  for (; t < rounds1k; t++) feed(t, all);
  const rssRoundRobin = process.memoryUsage().rss;
  const roundRobin = { ...held(t - 1), evictions: live.evictions };
  for (; t < o.frames; t++) feed(t, all);
  const rssFull = process.memoryUsage().rss;
  const full = { ...held(t - 1), evictions: live.evictions };
  // Timed once the rings are written through: a fresh ring's first pass also faults its pages in.
  for (const end = t + rounds1k; t < end; t++) feed(t, all, true);
  const holders = new Set<number>();
  for (let k = 0; k < 1000; k++) if (live.upTo(`bench-${k}`, T0 + (t - 1) * 1000)) holders.add(k);
  const quietFrom = t;
  const quietRounds = Math.ceil(live.idleMs / 1000) + 2;
  for (; t < quietFrom + quietRounds; t++) feed(t, (k) => !holders.has(k));
  const quiet = held(t - 1);
  const latency = await latencyWithHistory(o, F);
  return {
    model: { name: meta.name, features: F, related_cols: subspace?.cols ?? 0 },
    settings: {
      history_frames: o.frames,
      history_max_mb: o.maxMb,
      alert_max_bytes: o.alertMaxBytes,
    },
    alert,
    streams_1000: {
      capacity: live.capacity,
      idle_s: live.idleMs / 1000,
      history_mb: mb(live.bytes),
      rss_before_mb: mb(rssBefore),
      [`after_${rounds1k}_rounds`]: { ...roundRobin, rss_mb: mb(rssRoundRobin) },
      [`after_${o.frames}_rounds`]: { ...full, rss_mb: mb(rssFull) },
      [`holders_quiet_${quietRounds}_rounds`]: {
        ...quiet,
        evictions: live.evictions,
        holders_kept: [...holders].filter((k) =>
          live.upTo(`bench-${k}`, T0 + (quietFrom - 1) * 1000),
        ).length,
      },
    },
    // Reception → inference gains exactly this per frame with history on (off: nothing).
    record_us_per_frame: Object.fromEntries(
      Object.entries({ kept: keptUs, no_ring: ringlessUs }).map(([k, us]) => [
        k,
        { p50: r3(quantile(us, 0.5)), p99: r3(quantile(us, 0.99)), frames: us.length },
      ]),
    ),
    reception_to_inference: latency,
  };
}

const FORM = { "content-type": "application/x-www-form-urlencoded" };
/** Frames per second in all, over `LATENCY_STREAMS` streams (each its own ring). */
const LATENCY_RATE = 100;
const LATENCY_STREAMS = 4;

/** Waits until every accepted frame is scored (the queue drained); returns the final `/stats`. */
async function drained(client: Client) {
  // biome-ignore lint/suspicious/noExplicitAny: /stats as the engine serves it
  type Stats = any;
  const deadline = AbortSignal.timeout(60_000);
  let last = -1;
  let stable = 0;
  for (;;) {
    const stats: Stats = await client.getJson("/stats");
    if (stats.queue.depth === 0 && stats.frames.scored >= stats.frames.accepted) return stats;
    // Frames that never complete a window (a stream's first ones) stop the count moving.
    stable = stats.frames.scored === last && stats.queue.depth === 0 ? stable + 1 : 0;
    if (stable >= 20 || deadline.aborted) return stats;
    last = stats.frames.scored;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * The engine process at its defaults but `EVIDENCE_HISTORY_FRAMES`, fed `LATENCY_RATE` frames/s
 * of gzip JSON over `LATENCY_STREAMS` streams in an open loop: first long enough to fill each
 * stream's ring (so the timed part writes through rings whose pages are in, as a running plant
 * does), then timed. History on (`o.frames`) and off (0) back to back, and in the full run twice
 * in mirrored order (on, off, off, on) so a drift of this shared machine's load shows as a gap
 * between the two runs of one setting rather than as a difference between the settings.
 */
async function latencyWithHistory(o: ContextOptions, F: number) {
  const frames = makeBenchFrames({ nFeatures: F, count: 64, streams: LATENCY_STREAMS });
  const streams: LoadStream[] = frames.gzipJsonByStream.map((bodies) => ({
    bodies,
    headers: FORM,
  }));
  const perStream = LATENCY_RATE / LATENCY_STREAMS;
  const fillSeconds = Math.ceil(o.frames / perStream) + 2;
  const seconds = o.quick ? 15 : 60;
  const runs = [];
  for (const history of o.quick ? [o.frames, 0] : [o.frames, 0, 0, o.frames]) {
    const engine = await startEngineProcess({ EVIDENCE_HISTORY_FRAMES: String(history) });
    const client = createClient(engine.port);
    try {
      await openLoops(client, streams, { rate: LATENCY_RATE, seconds: fillSeconds });
      await drained(client);
      await client.getJson("/stats/reset");
      const load = await openLoops(client, streams, { rate: LATENCY_RATE, seconds });
      const stats = await drained(client);
      const rss = await engine.rss();
      runs.push({
        history_frames: history,
        latency_ms: stats.latency_ms,
        inference_ms: { p50: stats.inference_ms.p50, p99: stats.inference_ms.p99 },
        load,
        alerts: stats.alerts.generated,
        rss_mb: rss === undefined ? null : mb(rss),
      });
    } finally {
      client.close();
      await engine.stop();
    }
  }
  return {
    rate_per_s: LATENCY_RATE,
    streams: LATENCY_STREAMS,
    fill_s: fillSeconds,
    timed_s: seconds,
    runs,
  };
}
