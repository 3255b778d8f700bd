// `npm run retrain -- --model NAME`: a candidate from the engine's recorded history, judged by the promotion gate.
import { setPriority } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { engineConfigSchema, parseConfig } from "../../contracts/config.ts";
import { MODEL_NAME_PATTERN } from "../../contracts/models_api.ts";
import { historyDirOf } from "../../engine/history/mod.ts";
import { createLogger } from "../../telemetry/logger.ts";
import { summary } from "./report.ts";
import { EVENTS_PER_KIND, RetrainError, reportPath, retrain } from "./retrain.ts";

/** A mistake in the command line itself. */
class UsageError extends Error {
  override name = "UsageError";
}

const USAGE = `usage: npm run retrain -- --model NAME [--history DIR] [--registry MODEL_DIR] [--events N] [--seed N] [--by WHO] [--reason TEXT] [--auto]

Trains a candidate version of NAME from the engine's recorded history (--history, default
HISTORY_DIR/NAME, HISTORY_DIR defaulting to DATA_DIR/history), writes it into the registry
(--registry, default MODEL_DIR), scores it and the active version on the most recent stretch of
that history, on the incidents operators confirmed and on injected anomalies (--events per kind,
default ${EVENTS_PER_KIND}; --seed, default 1), and decides. RETRAIN_PROMOTE=auto activates a promoted candidate,
manual (default) leaves it ready. --auto chooses the candidate's window size and tail margin by a
backtest on its training series (as npm run train -- --auto). --by and --reason name who asked for
the run and why in a promotion's activation record (default by "retrain"). Only the most recent
RETRAIN_MAX_FRAMES recorded frames are read (default 3000). The report lies beside the version: MODEL_DIR/NAME/VERSION.retrain.json.
MODEL_DIR defaults to models/, where the committed models are flat (not retrainable); npm start
keeps its registry in DATA_DIR/models, so after npm start:
  MODEL_DIR=.data/engine/models npm run retrain -- --model featurewise_ocsvm`;

async function main(argv: string[]): Promise<void> {
  const { values: a } = parseArgs({
    args: argv,
    strict: true,
    options: {
      model: { type: "string" },
      history: { type: "string" },
      registry: { type: "string" },
      events: { type: "string" },
      seed: { type: "string" },
      by: { type: "string" },
      reason: { type: "string" },
      auto: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (a.help) {
    console.log(USAGE);
    return;
  }
  if (!a.model) throw new UsageError("'--model' is required");
  // A name is also a folder: one the registry would refuse is a mistyped argument, not a failed run.
  if (!MODEL_NAME_PATTERN.test(a.model) || a.model.includes("..")) {
    throw new UsageError(
      `'--model' must be a model name (letters, digits, '.', '_', '-', starting with a letter or digit, no '..'), got '${a.model}'`,
    );
  }
  const count = (name: string, raw: string | undefined, fallback: number, max: number, min = 0) => {
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new UsageError(`'--${name}' must be an integer ${min}..${max}, got '${raw}'`);
    }
    return n;
  };
  const config = parseConfig(engineConfigSchema, process.env);
  // Beside a live engine: this process yields the cores to it.
  try {
    setPriority(10);
  } catch {
    // not allowed here: runs at the normal priority
  }
  const registryDir = a.registry ?? config.MODEL_DIR;
  const report = await retrain({
    model: a.model,
    historyDir: a.history ?? join(historyDirOf(config), a.model),
    registryDir,
    promote: config.RETRAIN_PROMOTE,
    settings: {
      threshold: config.ANOMALY_THRESHOLD,
      confirmK: config.INCIDENT_CONFIRM_K,
      confirmN: config.INCIDENT_CONFIRM_N,
      quietWindows: config.INCIDENT_QUIET_WINDOWS,
    },
    device: config.DEFAULT_DEVICE === "cuda" ? "cuda" : "cpu",
    maxFrames: config.RETRAIN_MAX_FRAMES,
    // At least one: with none the gate could not check detection, and would pass it unmeasured.
    eventsPerKind: count("events", a.events, EVENTS_PER_KIND, 1000, 1),
    seed: count("seed", a.seed, 1, 2 ** 31 - 1),
    by: a.by,
    reason: a.reason,
    auto: a.auto,
    log: createLogger({
      service: "retrain",
      level: "warn",
      write: (l) => void process.stderr.write(l),
    }),
    say: (line) => console.error(`[retrain] ${line}`),
  });
  console.log(summary(report, reportPath(registryDir, report.model, report.candidate_version)));
}

main(process.argv.slice(2)).catch((error: unknown) => {
  // A wrong command line exits 2 with the usage, as every command here; a run that could not be
  // done (history, registry, gate) exits 1 with its reason.
  if (
    error instanceof UsageError ||
    (error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")
  ) {
    console.error(`retrain: ${(error as Error).message}`);
    console.error(USAGE);
    process.exit(2);
  }
  // A file that cannot be read or written (a full disk, a read-only folder) names itself too.
  const system = error as NodeJS.ErrnoException;
  const known =
    error instanceof RetrainError ||
    error instanceof RangeError ||
    (typeof system?.code === "string" && typeof system.syscall === "string");
  console.error(`retrain: ${known ? (error as Error).message : (error as Error).stack}`);
  process.exit(1);
});
