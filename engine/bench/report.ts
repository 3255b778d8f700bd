// Renders the benchmark result as the human table printed by `npm run bench`.

// biome-ignore lint/suspicious/noExplicitAny: the result object the CLI assembles
type Result = any;

const row = (label: string, value: string, target = "") =>
  `  ${label.padEnd(44)} ${value.padStart(16)}  ${target}`;
const ok = (pass: boolean) => (pass ? "ok" : "MISSED");

/** The targets of README.md's Performance table (a test keeps the two the same). */
export const TARGETS = {
  /** Sustained gzip JSON, as a multiple of the in-process floor. */
  gzipJsonToFloor: 4,
  /** Sustained binary frames/s. */
  binaryFramesPerS: 1000,
  /** p99 reception -> inference, ms, per open-loop rate. */
  p99Ms: { "1_per_s": 20, "100_per_s": 20 },
  /** Engine RSS, max over the run, MB. */
  rssMaxMb: 300,
} as const;

/**
 * Why a run's numbers mean nothing, walking any bench result (every mode's): a load whose frames
 * were refused (answered neither 202 nor 429) or of which none was accepted, answers counted as
 * non-2xx, a latency with no sample. Empty when the run measured what it says.
 *
 * @example const failures = runFailures(result); if (failures.length > 0) process.exitCode = 1;
 */
export function runFailures(result: Result): string[] {
  const out: string[] = [];
  const visit = function visit(node: unknown, path: string): void {
    if (typeof node !== "object" || node === null) return;
    if (Array.isArray(node)) {
      for (const [i, item] of node.entries()) visit(item, `${path}[${i}]`);
      return;
    }
    const o = node as Record<string, unknown>;
    const n = (key: string) => (typeof o[key] === "number" ? (o[key] as number) : undefined);
    const where = path || "result";
    // A load's outcome (load.ts): 429 is back-pressure, anything else but 202 a refusal.
    const sent = n("sent");
    const failed = n("failed");
    if (sent !== undefined && failed !== undefined) {
      if (failed > 0) {
        out.push(`${where}: ${failed} of ${sent} frames refused (answered neither 202 nor 429)`);
      } else if (sent > 0 && n("accepted") === 0) {
        out.push(`${where}: none of ${sent} frames accepted`);
      }
    }
    for (const key of ["non_2xx", "steady_non_2xx"]) {
      const count = n(key);
      if (count !== undefined && count > 0) out.push(`${where}.${key}: ${count} frames refused`);
    }
    // A latency: /stats' (count), a model's lane or a phase (scored windows).
    const samples = n("count") ?? n("scored");
    if (samples === 0 && (n("p99") !== undefined || "latency_ms" in o)) {
      out.push(`${where}: no latency sample (no frame scored)`);
    }
    for (const [key, value] of Object.entries(o)) visit(value, path ? `${path}.${key}` : key);
  };
  visit(result, "");
  return out;
}

/** The table: floor, micro-benchmark, sustained rates, latency, inference, memory, with targets. */
export function renderReport(r: Result): string {
  const lines: string[] = [];
  const m = r.machine;
  lines.push(
    `engine benchmark: ${r.config.features} features, ${m.cores} cores (${m.cpu}), ${m.memory_gib} GiB, node ${m.node}`,
  );
  lines.push(
    `frames: ${(r.frame_bytes.gzip_json / 1024).toFixed(0)} KB gzip JSON, ${(r.frame_bytes.json / 1024).toFixed(0)} KB inflated, ${(r.frame_bytes.binary / 1024).toFixed(0)} KB binary`,
  );
  lines.push("");
  lines.push("in-process, one core (ms per frame)");
  lines.push(
    row(
      "floor: gunzip + JSON.parse",
      `${r.floor.ms_per_frame} ms`,
      `= ${r.floor.frames_per_s} frames/s`,
    ),
  );
  lines.push(row("gunzip", `${r.micro.gunzip_ms} ms`));
  lines.push(row("JSON.parse", `${r.micro.json_parse_ms} ms`));
  lines.push(
    row("JSON.parse + valibot (specification path)", `${r.micro.json_parse_valibot_ms} ms`),
  );
  lines.push(
    row(
      "scanner (validates, fills float32)",
      `${r.micro.scanner_ms} ms`,
      `${r.micro.scanner_speedup}x faster`,
    ),
  );
  lines.push(row("gunzip + scanner", `${r.micro.gunzip_scanner_ms} ms`));
  if (r.micro.inference_ms_per_window !== null) {
    lines.push(
      row(
        "ONNX inference per window (default model, 1 thread, runs of 8)",
        `${r.micro.inference_ms_per_window} ms`,
      ),
    );
  }
  lines.push("");
  lines.push(
    `engine process over HTTP (keep-alive, ${r.config.connections} connections, QUEUE_MAX_SIZE=100)`,
  );
  const g = r.sustained.gzip_json;
  lines.push(
    row(
      "sustained gzip JSON, accepted and scored",
      `${g.frames_per_s} frames/s`,
      `${g.ratio_to_floor}x floor (target ≥ ${TARGETS.gzipJsonToFloor}×: ${ok(g.ratio_to_floor >= TARGETS.gzipJsonToFloor)})`,
    ),
  );
  const b = r.sustained.binary;
  lines.push(
    row(
      "sustained binary, accepted and scored",
      `${b.frames_per_s} frames/s`,
      `target ≥ ${TARGETS.binaryFramesPerS.toLocaleString("en")}: ${ok(b.frames_per_s >= TARGETS.binaryFramesPerS)}`,
    ),
  );
  for (const [key, limit] of Object.entries(TARGETS.p99Ms)) {
    const l = r.latency_ms[key];
    if (!l) continue;
    // No sample is no measurement, not a p99 of 0 that meets the target.
    const verdict = l.count === 0 ? "NO SAMPLES" : ok(l.p99 <= limit);
    lines.push(
      row(
        `reception -> inference at ${key.replace("_per_s", "")} frame/s (n=${l.count})`,
        `p50 ${l.p50} ms`,
        `p99 ${l.p99} ms (target ≤ ${limit} ms: ${verdict})`,
      ),
    );
  }
  const sizes = Object.entries(r.inference_ms_by_batch_size as Record<string, number>)
    .sort((a, b) => Number(a[0]) - Number(b[0]))
    .map(([n, ms]) => `${n}: ${ms.toFixed(2)}`);
  lines.push(row("inference ms by batch size", "", sizes.join(", ")));
  const rss = r.rss;
  const growth = rss.at_100_per_s_end_mb - rss.at_100_per_s_start_mb;
  lines.push(
    row(
      "engine RSS, max over the run",
      `${rss.max_mb} MB`,
      `target ≤ ${TARGETS.rssMaxMb} MB: ${ok(rss.max_mb <= TARGETS.rssMaxMb)}`,
    ),
  );
  lines.push(
    row(
      "engine RSS over the 100 frame/s run",
      `${rss.at_100_per_s_start_mb} -> ${rss.at_100_per_s_end_mb} MB`,
      `growth ${growth.toFixed(1)} MB`,
    ),
  );
  if (r.bus) {
    lines.push("");
    lines.push(
      "scale-out on NATS JetStream (1 ingest replica + N workers as processes, same machine, same run)",
    );
    lines.push(
      row(
        "in-memory, sustained binary (above)",
        `${b.frames_per_s} frames/s`,
        `p99 at 100/s ${r.latency_ms["100_per_s"]?.p99} ms`,
      ),
    );
    for (const phase of Object.values(r.bus) as Result[]) {
      const s = phase.sustained_binary;
      const l = phase.latency_100_per_s;
      lines.push(
        row(
          `${phase.workers} worker(s), sustained binary accepted`,
          `${s.accepted_per_s} frames/s`,
          `scored ${s.scored_per_s} frames/s (backlog drained in ${s.drain_s} s)`,
        ),
      );
      lines.push(
        row(
          `${phase.workers} worker(s), reception -> inference at 100/s (n=${l.count})`,
          `p50 ${l.p50} ms`,
          `p99 ${l.p99} ms (highest worker's)`,
        ),
      );
      lines.push(
        row(
          `${phase.workers} worker(s), RSS max per process`,
          "",
          `${phase.rss_max_mb.join(", ")} MB (workers..., ingest)`,
        ),
      );
    }
  }
  if (r.swap) {
    const w = r.swap;
    lines.push("");
    lines.push(
      `model activation under ${w.rate} frames/s (one stream, ${w.seconds_per_phase} s before, during, after)`,
    );
    lines.push(
      row(
        "activation answered",
        `${w.activation_ms} ms`,
        `status ${w.activation_status}; non-2xx ${w.non_2xx}, windows lost ${w.windows_lost}, doubled ${w.windows_doubled} (all must be 0)`,
      ),
    );
    for (const name of ["before", "during", "after"] as const) {
      const p = w[name];
      lines.push(
        row(
          `${name}: reception -> inference (n=${p.scored})`,
          `p50 ${p.latency_ms.p50} ms`,
          `p99 ${p.latency_ms.p99} ms, max ${p.latency_ms.max} ms, RSS max ${p.rss_max_mb} MB`,
        ),
      );
    }
  }
  return lines.join("\n");
}
