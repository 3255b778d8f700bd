import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { renderReport, runFailures, TARGETS } from "./report.ts";

const load = (sent: number, accepted: number, failed = 0) => ({
  sent,
  accepted,
  busy: 0,
  failed,
  seconds: 5,
});
/** /stats' latency: all 0 without samples. */
const latency = (count: number, ms: number) => {
  const p99 = count ? ms : 0;
  return { count, p50: p99 / 2, p90: p99, p99, max: p99 };
};

/** A load run's result as engine/bench/cli.ts assembles it: `scored` frames, `refused` of them refused. */
function loadRun(scored: number, refused = 0) {
  return {
    machine: { cpu: "test", cores: 2, memory_gib: 8, node: "v20", platform: "linux-x64" },
    config: { features: 200, connections: 2, workers: "0", quick: true, env: {} },
    frame_bytes: { gzip_json: 2048, json: 6144, binary: 800 },
    floor: { ms_per_frame: 0.1, frames_per_s: 10_000 },
    micro: {
      gunzip_ms: 0.05,
      json_parse_ms: 0.05,
      json_parse_valibot_ms: 0.2,
      scanner_ms: 0.03,
      scanner_speedup: 7,
      gunzip_scanner_ms: 0.08,
      inference_ms_per_window: null,
    },
    sustained: {
      gzip_json: {
        frames_per_s: scored ? 45_000 : 0,
        load: load(1000, 1000 - refused, refused),
        ratio_to_floor: scored ? 4.5 : 0,
      },
      binary: { frames_per_s: scored ? 1200 : 0, load: load(1000, 1000 - refused, refused) },
    },
    latency_ms: {
      "1_per_s": { ...latency(scored && 5, 12), load: load(5, 5 - Math.min(refused, 5)) },
      "100_per_s": { ...latency(scored, 18), load: load(1000, 1000 - refused, refused) },
    },
    inference_ms_by_batch_size: {},
    rss: { max_mb: 250, at_100_per_s_start_mb: 240, at_100_per_s_end_mb: 245, samples: [] },
  };
}

test("bench report judges against the targets of README's Performance table", () => {
  const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
  const performance = readme.slice(readme.indexOf("## Performance"));
  const target = (measure: string) => {
    const row = performance.split("\n").find((line) => line.startsWith(`| ${measure}`));
    assert.ok(row, measure);
    return row.split("|").at(-2)?.trim();
  };
  assert.equal(target("sustained gzip JSON"), `≥ ${TARGETS.gzipJsonToFloor}×`);
  assert.equal(target("sustained binary frames"), "≥ 1,000");
  assert.equal(TARGETS.binaryFramesPerS, 1000);
  assert.equal(target("p99 reception → inference at 1 frame/s"), "≤ 20 ms");
  assert.equal(target("p99 reception → inference at 100 frames/s"), "≤ 20 ms");
  assert.deepEqual(TARGETS.p99Ms, { "1_per_s": 20, "100_per_s": 20 });
  assert.equal(target("engine RSS, max over the run"), `≤ ${TARGETS.rssMaxMb} MB`);

  const text = renderReport(loadRun(1000));
  assert.match(text, /4\.5x floor \(target ≥ 4×: ok\)/);
  assert.match(text, /at 1 frame\/s \(n=5\).*p99 12 ms \(target ≤ 20 ms: ok\)/);
  assert.match(text, /at 100 frame\/s \(n=1000\).*p99 18 ms \(target ≤ 20 ms: ok\)/);
  assert.match(text, /target ≥ 1,000: ok/);
  assert.doesNotMatch(text, /target <= 100|target >= 3x/);
});

test("bench report says a latency without samples is no measurement", () => {
  const text = renderReport(loadRun(0, 1000));
  assert.match(text, /\(n=0\).*p99 0 ms \(target ≤ 20 ms: NO SAMPLES\)/);
  assert.doesNotMatch(text, /\(n=0\).*: ok\)/);
});

test("runFailures names refused frames and latencies without samples, in any mode's result", () => {
  assert.deepEqual(runFailures(loadRun(1000)), []);
  const failures = runFailures(loadRun(0, 1000));
  assert.ok(
    failures.includes(
      "sustained.gzip_json.load: 1000 of 1000 frames refused (answered neither 202 nor 429)",
    ),
    failures.join("\n"),
  );
  assert.ok(failures.includes("latency_ms.100_per_s: no latency sample (no frame scored)"));
  assert.ok(failures.includes("latency_ms.1_per_s: no latency sample (no frame scored)"));

  // --models 2: a model's lane scored nothing, a phase's answers other than 202.
  const phase = (scored: number) => ({
    work: { steady: load(50, 50) },
    lanes: { packaging: { scored, streams: {}, p50: 1, p90: 1, p99: 1, max: 1, batches: 1 } },
    all: { accepted: 50, scored, p50: 1, p99: 1, max: 1 },
    rss_max_mb: 300,
  });
  assert.deepEqual(
    runFailures({ flood: { alone: phase(0), steady_non_2xx: 3, after: phase(50) } }),
    [
      "flood.steady_non_2xx: 3 frames refused",
      "flood.alone.lanes.packaging: no latency sample (no frame scored)",
      "flood.alone.all: no latency sample (no frame scored)",
    ],
  );
  // --swap's phases keep their count as `scored` beside `latency_ms`.
  assert.deepEqual(
    runFailures({ swap: { before: { load: load(10, 0), scored: 0, latency_ms: { p99: 0 } } } }),
    [
      "swap.before: no latency sample (no frame scored)",
      "swap.before.load: none of 10 frames accepted",
    ],
  );
});
