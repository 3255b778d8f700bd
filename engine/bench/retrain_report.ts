// The text table of `npm run bench -- --retrain`.

import type { HotPathResult } from "./history_hot_path.ts";
import type { HistorySize } from "./history_size.ts";
import type { Floor } from "./micro.ts";
import type { RetrainCostResult } from "./retrain_run.ts";

export interface RetrainBenchResult {
  machine: {
    cpu: string;
    cores: number;
    load_average_before: number[];
    load_average_after: number[];
  };
  floor: { before: Floor; after: Floor };
  hot_path: HotPathResult;
  history_size: HistorySize;
  retrain: RetrainCostResult;
}

const list = (xs: number[]) => xs.join(", ");

/** The result as the lines the bench prints. */
export function renderRetrainReport(r: RetrainBenchResult): string {
  const h = r.hot_path;
  const s = r.history_size;
  const lines = [
    `machine: ${r.machine.cpu}, ${r.machine.cores} cores, load average ${list(r.machine.load_average_before)} -> ${list(r.machine.load_average_after)}`,
    `floor (gunzip + JSON.parse, one core): ${r.floor.before.frames_per_s} frames/s before, ${r.floor.after.frames_per_s} after`,
    "",
    "1. history recording on the scoring path (engine runs in order off, on, off, on, ...)",
    `   saturation, binary, 8 connections (frames/s): off ${list(h.runs.filter((x) => x.history === "off").map((x) => x.saturation.frames_per_s))}; on ${list(h.runs.filter((x) => x.history === "on").map((x) => x.saturation.frames_per_s))}`,
    `   ratio on/off of the means ${h.saturation_ratio_on_off}; per pair ${list(h.saturation_pair_ratios)}`,
    `   ${h.runs[0]?.low_rate.rate} frames/s, one stream (n = ${list(h.runs.map((x) => x.low_rate.count))}): p50 ms off ${list(h.low_rate_p50_ms.off)}; on ${list(h.low_rate_p50_ms.on)}`,
    `   p99 ms off ${list(h.low_rate_p99_ms.off)}; on ${list(h.low_rate_p99_ms.on)}`,
    `   history written per run with it on (MiB): ${list(h.runs.filter((x) => x.history === "on").map((x) => Math.round(x.history_bytes / 2 ** 20)))}`,
    "",
    "2. history size",
    `   ${s.bytes_per_frame} bytes on disk per recorded frame (${r.retrain.recorded.frames_read} frames, ${r.retrain.recorded.chunk_bytes} bytes of chunks)`,
    `   one stream at ${s.rate_hz} Hz, HISTORY_EVERY_N=${s.every_n} (runs of ${s.run_frames}): ${s.frames_per_stream_day} frames, ${s.gib_per_stream_day} GiB a day`,
    `   HISTORY_MAX_BYTES=${s.max_bytes} holds ${s.days_held_one_stream} days (${s.hours_held_one_stream} h) of one stream`,
    "",
    `3. retraining (npm run retrain, nice 10) on ${r.retrain.recorded.frames_read} recorded frames (sent in ${r.retrain.recorded.send_s} s)`,
  ];
  for (const run of r.retrain.runs) {
    const t = run.retrain;
    lines.push(
      `   beside ${run.rate} frame(s)/s: ${t.wall_s} s wall, ${t.cpu_s} s CPU, ${t.rss_max_mb} MB RSS max, exit ${t.exit_code}, decision ${t.decision ?? "none"}${t.reasons.length ? ` (${t.reasons.join("; ")})` : ""}`,
      ...t.progress.map((p) => `     ${String(p.t_s).padStart(7)} s  ${p.line}`),
      ...(t.stderr_tail ? [`     stderr: ${t.stderr_tail}`] : []),
      `     engine p50/p99/max ms: before ${run.before.p50}/${run.before.p99}/${run.before.max} (n = ${run.before.count}), during ${run.during.p50}/${run.during.p99}/${run.during.max} (n = ${run.during.count}); load ${JSON.stringify(run.load)}`,
    );
  }
  return lines.join("\n");
}
