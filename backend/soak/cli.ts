// `npm run soak [-- --duration-s 300 --rate-hz 10 --json out.json]`: runs the soak and prints its accounting.
import { writeFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { runSoak } from "./soak.ts";

const { values } = parseArgs({
  options: {
    "duration-s": { type: "string", default: "180" },
    "rate-hz": { type: "string", default: "10" },
    "anomaly-every-s": { type: "string", default: "2" },
    "sample-every-s": { type: "string", default: "15" },
    json: { type: "string" },
  },
});
const num = (name: keyof typeof values) => {
  const n = Number(values[name]);
  if (!(n > 0)) throw new RangeError(`'--${name}' must be a positive number, got ${values[name]}`);
  return n;
};

console.log(
  `soak: ${values["duration-s"]} s at ${values["rate-hz"]} frames/s (10× real rate), an anomaly every ${values["anomaly-every-s"]} s`,
);
console.log("   t_s  frames_sent  alerts_stored  engine_rss_mb  backend_rss_mb");
const report = await runSoak({
  durationS: num("duration-s"),
  rateHz: num("rate-hz"),
  anomalyEveryS: num("anomaly-every-s"),
  sampleEveryS: num("sample-every-s"),
  databaseUrl: process.env.DATABASE_URL || undefined,
  onSample: (s) =>
    console.log(
      [s.t_s, s.frames_sent, s.alerts_stored, s.engine_rss_mb, s.backend_rss_mb]
        .map((x, i) => String(x).padStart(i === 0 ? 6 : 13))
        .join("  "),
    ),
});

const rss = report.samples.map((s) => s.engine_rss_mb);
const half = Math.max(1, Math.floor(rss.length / 2));
const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const growth = avg(rss.slice(half)) - avg(rss.slice(0, half));
const checks = {
  "frames in = frames scored (+ window warm-up)":
    report.frames_accepted_by_engine === report.frames_scored + report.warm_up_frames,
  "frames sent = frames accepted": report.frames_sent === report.frames_accepted_by_engine,
  "alerts generated = alerts stored": report.alerts_generated === report.alerts_stored,
};
console.log(
  `\nframes: sent ${report.frames_sent}, accepted ${report.frames_accepted_by_engine}, scored ${report.frames_scored} (+${report.warm_up_frames} warm-up), answers ${JSON.stringify(report.engine_answers)}, retries ${report.retries}`,
);
console.log(
  `alerts: generated ${report.alerts_generated}, delivered ${report.alerts_delivered}, stored (distinct ids) ${report.alerts_stored}; anomalies injected ${report.anomalies_injected}`,
);
console.log(
  `engine RSS: first half ${avg(rss.slice(0, half)).toFixed(1)} MB, second half ${avg(rss.slice(half)).toFixed(1)} MB (${growth >= 0 ? "+" : ""}${growth.toFixed(1)} MB)`,
);
for (const [name, ok] of Object.entries(checks)) console.log(`${ok ? "ok  " : "FAIL"} ${name}`);
if (values.json)
  await writeFile(values.json, `${JSON.stringify({ ...report, checks }, null, 2)}\n`);
process.exit(Object.values(checks).every(Boolean) ? 0 : 1);
