// `npm run soak [-- --duration-s 300 --rate-hz 10 --retention-alerts-days 0.001 --json out.json]`: runs the soak and prints its accounting.
import { writeFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { commandLine, outputFileProblem } from "../../contracts/command_line.ts";
import { runSoak } from "./soak.ts";

const USAGE = `usage: npm run soak -- [--duration-s S] [--rate-hz HZ] [--anomaly-every-s S] [--sample-every-s S]
                         [--alert-mode incident|frame] [--json FILE]
                         [--retention-alerts-days D [--retention-incidents-days D] [--retention-every-s S]
                          [--retention-batch N] [--retention-backlog N]]

A real engine child process and the backend in-process (PGlite, or DATABASE_URL), the simulator at
--rate-hz frames/s (default 10, 10x the real rate of 1 frame/s) for --duration-s (default 180) with
an anomaly every --anomaly-every-s (default 2), memory sampled every --sample-every-s (default 15).
--alert-mode frame: an alert per anomalous window (default incident). Retention is on with
--retention-alerts-days (fractions of a day: 0.001 = 86.4 s; incidents default to twice it), a prune
every --retention-every-s (default 10) in batches of --retention-batch (default 200), with
--retention-backlog alerts (default 0) already past the horizon at the start.
Exit status 1 when an accounting equality fails (backend/README.md "Soak").`;

// A mistake in the arguments is printed with the usage, exit status 2, before any work.
const cli = commandLine("soak", USAGE, parseSoakArgs);
const { parsed } = cli;
// Annotated: a call to it then narrows like a throw.
const usageError: (message: string) => never = cli.usageError;
const { values } = parsed;

function parseSoakArgs(argv: string[]) {
  return parseArgs({
    args: argv,
    options: {
      help: { type: "boolean", short: "h" },
      "duration-s": { type: "string", default: "180" },
      "rate-hz": { type: "string", default: "10" },
      "anomaly-every-s": { type: "string", default: "2" },
      "sample-every-s": { type: "string", default: "15" },
      // `frame`: an alert per anomalous window, many more rows than the default `incident`.
      "alert-mode": { type: "string", default: "incident" },
      // Retention on when given (fractions of a day: 0.001 = 86.4 s); incidents default to twice it.
      "retention-alerts-days": { type: "string" },
      "retention-incidents-days": { type: "string" },
      // Defaults below (RETENTION_DEFAULTS): given without --retention-alerts-days they are refused.
      "retention-every-s": { type: "string" },
      "retention-batch": { type: "string" },
      // Alerts already past the horizon when the run starts: the first prune deletes them under load.
      "retention-backlog": { type: "string" },
      json: { type: "string" },
    },
  });
}

type NumberOption = Exclude<keyof typeof values, "help" | "alert-mode" | "json">;

/** The retention options' values when not given (with --retention-alerts-days). */
const RETENTION_DEFAULTS = {
  "retention-every-s": "10",
  "retention-batch": "200",
  "retention-backlog": "0",
} as const;

/** A positive number (`integer`: a whole one, 0 allowed with `orZero`); checked before any work. */
const num = (name: NumberOption, integer = false, orZero = false): number => {
  const raw = (values[name] ??
    RETENTION_DEFAULTS[name as keyof typeof RETENTION_DEFAULTS]) as string;
  const n = Number(raw);
  const ok =
    raw.trim() !== "" &&
    (integer ? Number.isInteger(n) : Number.isFinite(n)) &&
    (orZero ? n >= 0 : n > 0);
  if (!ok) {
    const what = integer
      ? orZero
        ? "a non-negative integer"
        : "a positive integer"
      : "a positive number";
    usageError(`'--${name}' must be ${what}, got '${raw}'`);
  }
  return n;
};

const alertMode = values["alert-mode"];
if (alertMode !== "incident" && alertMode !== "frame") {
  usageError(`'--alert-mode' must be incident or frame, got '${alertMode}'`);
}
const durationS = num("duration-s");
const rateHz = num("rate-hz");
const anomalyEveryS = num("anomaly-every-s");
const sampleEveryS = num("sample-every-s");
// Retention is on only with --retention-alerts-days: its other options alone would be ignored.
const retentionOnly = [
  "retention-incidents-days",
  "retention-every-s",
  "retention-batch",
  "retention-backlog",
] as const;
const strays = retentionOnly.filter((name) => values[name] !== undefined);
if (values["retention-alerts-days"] === undefined && strays.length > 0) {
  usageError(
    `${strays.map((name) => `'--${name}'`).join(", ")} apply only with '--retention-alerts-days' (retention is off without it)`,
  );
}
const retention =
  values["retention-alerts-days"] === undefined
    ? undefined
    : {
        alertsDays: num("retention-alerts-days"),
        incidentsDays:
          values["retention-incidents-days"] === undefined
            ? 2 * num("retention-alerts-days")
            : num("retention-incidents-days"),
        everyS: num("retention-every-s"),
        batchSize: num("retention-batch", true),
        backlog: num("retention-backlog", true, true),
      };

if (values.json !== undefined) {
  const problem = await outputFileProblem(values.json);
  if (problem) usageError(`'--json ${values.json}': ${problem}`);
}

// The real rate is 1 frame/s per stream (the plant's sampling), so the multiple is the rate.
const pace = rateHz === 1 ? "the real rate" : `${rateHz}× the real rate`;
console.log(
  `soak: ${durationS} s at ${rateHz} frames/s (${pace}), an anomaly every ${anomalyEveryS} s, ALERT_MODE=${alertMode}`,
);
if (retention) {
  console.log(
    `retention: alerts ${retention.alertsDays * 86_400} s, incidents ${retention.incidentsDays * 86_400} s, a prune every ${retention.everyS} s in batches of ${retention.batchSize}, ${retention.backlog} alerts past the horizon at the start`,
  );
}
const columns = [
  "t_s",
  "frames_sent",
  "alerts_stored",
  "alerts_pruned",
  "db_mb",
  "engine_rss_mb",
  "backend_rss_mb",
] as const;
console.log(columns.map((c, i) => c.padStart(i === 0 ? 6 : 13)).join("  "));
const report = await runSoak({
  durationS,
  rateHz,
  anomalyEveryS,
  sampleEveryS,
  databaseUrl: process.env.DATABASE_URL || undefined,
  alertMode,
  retention,
  onSample: (s) =>
    console.log(columns.map((c, i) => String(s[c]).padStart(i === 0 ? 6 : 13)).join("  ")),
});

const rss = report.samples.map((s) => s.engine_rss_mb);
const half = Math.max(1, Math.floor(rss.length / 2));
const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const growth = avg(rss.slice(half)) - avg(rss.slice(0, half));
const checks = {
  "frames in = frames scored (+ window warm-up)":
    report.frames_accepted_by_engine === report.frames_scored + report.warm_up_frames,
  "frames sent = frames accepted": report.frames_sent === report.frames_accepted_by_engine,
  // With retention on: stored = kept + pruned.
  "alerts generated = alerts stored": report.alerts_generated === report.alerts_stored,
};
console.log(
  `\nframes: sent ${report.frames_sent}, accepted ${report.frames_accepted_by_engine}, scored ${report.frames_scored} (+${report.warm_up_frames} warm-up), answers ${JSON.stringify(report.engine_answers)}, retries ${report.retries}`,
);
console.log(
  `alerts: generated ${report.alerts_generated}, delivered ${report.alerts_delivered}, stored (distinct ids) ${report.alerts_stored}; anomalies injected ${report.anomalies_injected}`,
);
const db = report.samples.map((s) => s.db_mb);
console.log(
  `database (our tables): first half ${avg(db.slice(0, half)).toFixed(1)} MB, second half ${avg(db.slice(half)).toFixed(1)} MB, last ${db.at(-1) ?? 0} MB`,
);
const lat = report.ingest_latency;
const line = (name: string, l: typeof lat.idle) =>
  `${name}: ${l.n} POSTs, p50 ${l.p50_ms ?? "–"} ms, p99 ${l.p99_ms ?? "–"} ms, max ${l.max_ms ?? "–"} ms`;
console.log(
  `alert ingest ${line("no prune running", lat.idle)}; ${line("while pruning", lat.while_pruning)}`,
);
if (report.retention) {
  const r = report.retention;
  console.log(
    `prunes: ${r.runs} (${r.failed_runs} failed), alerts ${report.alerts_pruned}, incidents ${r.incidents_pruned}, run p50 ${r.run_ms_p50} ms, max ${r.run_ms_max} ms`,
  );
}
console.log(
  `engine RSS: first half ${avg(rss.slice(0, half)).toFixed(1)} MB, second half ${avg(rss.slice(half)).toFixed(1)} MB (${growth >= 0 ? "+" : ""}${growth.toFixed(1)} MB)`,
);
for (const [name, ok] of Object.entries(checks)) console.log(`${ok ? "ok  " : "FAIL"} ${name}`);
if (values.json)
  await writeFile(values.json, `${JSON.stringify({ ...report, checks }, null, 2)}\n`);
process.exit(Object.values(checks).every(Boolean) ? 0 : 1);
