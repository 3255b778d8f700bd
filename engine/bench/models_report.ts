// Renders the two-model benchmark (`--models 2`) as the table printed after the run.
import type { FloodResult } from "./flood.ts";
import type { LaneLatency } from "./lane_latency.ts";
import type { Floor } from "./micro.ts";
import type { ModelsSwapResult } from "./swap_models.ts";

const row = (label: string, value: string, rest = "") =>
  `  ${label.padEnd(46)} ${value.padStart(18)}  ${rest}`;
const lat = (l: LaneLatency | undefined) =>
  l
    ? `p50 ${l.p50} / p99 ${l.p99} / max ${l.max} ms (n=${l.scored}); runs incl. turn wait p50 ${l.inference_ms.p50} / p99 ${l.inference_ms.p99} ms per batch`
    : "no windows";

/** The swap's and the flood's figures, per model and per phase. */
export function renderModelsReport(r: {
  machine: {
    cpu: string;
    cores: number;
    memory_gib: number;
    node: string;
    load_average_before: number[];
    load_average_after: number[];
  };
  floor: Floor;
  train_s: number;
  swap?: ModelsSwapResult;
  flood?: FloodResult;
}): string {
  const m = r.machine;
  const lines = [
    `two-model engine benchmark: ${m.cores} cores (${m.cpu}), ${m.memory_gib} GiB, node ${m.node}`,
    `load average before ${m.load_average_before.join(" ")}, after ${m.load_average_after.join(" ")}; floor (gunzip + JSON.parse, 25,000 features) ${r.floor.frames_per_s} frames/s; small model trained in ${r.train_s} s`,
  ];
  const w = r.swap;
  if (w) {
    lines.push("");
    lines.push(
      `model activation under ${w.rate} frames/s over two models (${w.streams_per_model} streams each, ${w.seconds_per_phase} s before, during, after)`,
    );
    lines.push(
      row(
        `${w.switched.model} activated`,
        `${w.activation_ms} ms`,
        `status ${w.activation_status}; ${w.switched.from} -> ${w.switched.to}`,
      ),
    );
    lines.push(
      row(
        "non-2xx, windows lost, windows doubled",
        `${w.non_2xx}, ${w.windows_lost}, ${w.windows_doubled}`,
        "(all must be 0)",
      ),
    );
    for (const name of ["before", "during", "after"] as const) {
      const p = w[name];
      lines.push(
        row(
          `${name}: both, reception -> inference`,
          `p99 ${p.all.p99} ms`,
          `p50 ${p.all.p50}, max ${p.all.max} ms; RSS max ${p.rss_max_mb} MB`,
        ),
      );
      for (const [model, lane] of Object.entries(p.lanes).sort((a, b) =>
        a[0].localeCompare(b[0]),
      )) {
        lines.push(row(`  ${model}`, "", lat(lane)));
      }
    }
  }
  const f = r.flood;
  if (f) {
    lines.push("");
    lines.push(
      `${f.steady.model} at ${f.steady.rate} frames/s (${f.steady.streams} streams) beside ${f.flood.model} flooded (${f.flood.connections} binary connections), ${f.seconds_per_phase} s per phase`,
    );
    for (const name of ["alone", "flooded", "after"] as const) {
      const p = f[name];
      lines.push(
        row(
          `${name}: ${f.steady.model}`,
          `p99 ${p.lanes[f.steady.model]?.p99 ?? "-"} ms`,
          lat(p.lanes[f.steady.model]),
        ),
      );
    }
    lines.push(
      row(
        `flooded: ${f.flood.model}`,
        `${f.flood_accepted_per_s} frames/s`,
        `accepted and scored; ${f.flood_busy} answered 429; ${lat(f.flooded.lanes[f.flood.model])}`,
      ),
    );
    lines.push(
      row(
        `${f.steady.model}: answers other than 202`,
        `${f.steady_non_2xx}`,
        `(must be 0); RSS max ${f.alone.rss_max_mb}, ${f.flooded.rss_max_mb}, ${f.after.rss_max_mb} MB`,
      ),
    );
  }
  return lines.join("\n");
}
