// `npm run bench -- --context`: what incident context costs: alert size and build time, history memory, per-frame cost.
import { readFile } from "node:fs/promises";
import { parseModelMetadata } from "../../contracts/model.ts";
import { createPlant } from "../../models/signal/mod.ts";
import type { IncidentEvent, SensorEvidence } from "../../scoring/incident_tracker.ts";
import { type AlertContext, buildIncidentAlert } from "../alert/build_alert.ts";
import { HistoryStore } from "../evidence/history_store.ts";
import { IncidentEvidence } from "../evidence/incident_evidence.ts";
import { crossSubspaceFromOnnx } from "../evidence/model_subspace.ts";

const MODEL = new URL("../../models/featurewise_ocsvm", import.meta.url).pathname;
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
 * default history and budget; and what keeping a frame costs each frame on its way from
 * reception to inference (history on vs off: the only work the hot path gains).
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

  // 1,000 live streams of F sensors fed round-robin at the default history and budget, then
  // the budget's streams filled whole (the RSS the budget allows).
  const rounds1k = o.quick ? 5 : 30;
  globalThis.gc?.();
  const rssBefore = process.memoryUsage().rss;
  const live = new HistoryStore({ frames: o.frames, features: F, maxBytes: o.maxMb * 2 ** 20 });
  const recordUs: number[] = [];
  let t = 0;
  for (; t < rounds1k; t++) {
    for (let k = 0; k < 1000; k++) {
      const t0 = performance.now();
      live.record(`bench-${k}`, T0 + t * 1000, frames[(t + k) % frames.length]);
      recordUs.push((performance.now() - t0) * 1000);
    }
  }
  const rssRoundRobin = process.memoryUsage().rss;
  const keptRoundRobin = live.upTo("bench-999", T0 + (t - 1) * 1000)?.length ?? 0;
  for (; t < rounds1k + o.frames; t++) {
    for (let k = 0; k < live.capacity; k++) {
      live.record(`full-${k}`, T0 + t * 1000, frames[(t + k) % frames.length]);
    }
  }
  const rssFull = process.memoryUsage().rss;
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
      evictions: live.evictions,
      frames_kept_per_stream_round_robin: keptRoundRobin,
      history_mb: mb(live.bytes),
      rss_before_mb: mb(rssBefore),
      rss_round_robin_mb: mb(rssRoundRobin),
      rss_budget_full_mb: mb(rssFull),
    },
    // Reception → inference gains exactly this per frame with history on (off: nothing).
    record_us_per_frame: {
      p50: r3(quantile(recordUs, 0.5)),
      p99: r3(quantile(recordUs, 0.99)),
      frames: recordUs.length,
    },
  };
}
