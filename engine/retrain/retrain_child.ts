// Runs `npm run retrain -- --model NAME` for one model in a child process at low priority and reads what it decided.
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { setPriority } from "node:os";
import process from "node:process";
import { fileURLToPath } from "node:url";
import * as v from "valibot";
import type { RetrainRun } from "../../contracts/models_api.ts";

const RUN_TS = fileURLToPath(new URL("../../run_ts.mjs", import.meta.url));
const CLI = fileURLToPath(new URL("../../models/retrain/cli.ts", import.meta.url));
/** The CLI sets this itself; set from here too, so its start-up (compiling, loading) yields as well. */
const NICE = 10;
/** Of the child's stderr, only the tail is kept: its last lines say why it stopped. */
const STDERR_KEEP = 64 * 1024;
/** How often the child looks whether the engine that started it is still its parent. */
const PARENT_CHECK_MS = 500;

/**
 * Loaded first in the child (Node: `--import`, Deno: `--preload`; both take this data: URL): a
 * thread that ends the child once the engine that started it (`RETRAIN_PARENT_PID`) is no longer
 * its parent (killed with `kill -9`, nothing ran to stop the child), so no orphan trains on,
 * writes into a scratch folder nobody removes, or (`RETRAIN_PROMOTE=auto`) activates a version
 * after the engine is gone. A thread, since training holds the main thread for long stretches;
 * unref'd, so it never keeps the child alive. Reading `process.ppid` again each time: it changes
 * when the parent dies.
 */
const PARENT_WATCH = `data:text/javascript,${encodeURIComponent(
  `import process from "node:process";
import { Worker } from "node:worker_threads";
const parent = Number(process.env.RETRAIN_PARENT_PID);
if (parent > 0) {
  new Worker("setInterval(() => { if (process.ppid !== " + parent + ") process.kill(process.pid, 'SIGKILL'); }, ${PARENT_CHECK_MS});", { eval: true }).unref();
}`,
)}`;

/** The parts of the retraining report (`MODEL_DIR/NAME/VERSION.retrain.json`) the engine shows. */
const reportSchema = v.object({
  candidate_version: v.string(),
  decision: v.picklist(["promoted", "held"]),
  reasons: v.array(v.string()),
  activated: v.nullable(v.unknown()),
});

/**
 * The CLI's exit-1 messages that are a decision, not a failure: a young history, or one that
 * trains the active version (or a version judged before) again (models/retrain/retrain.ts).
 */
const EXPECTED_HOLD = /too little history|nothing new to train on/;

/** What a run came to: a {@link RetrainRun} without its times. */
export type RetrainResult = Omit<RetrainRun, "started_at" | "finished_at">;

export interface RetrainChildOptions {
  model: string;
  /** The engine's settings for the child (MODEL_DIR, HISTORY_DIR, RETRAIN_PROMOTE, ...). */
  env: Record<string, string>;
  /** Aborted at shutdown: the child is stopped (SIGTERM) and the run counts as failed. */
  signal: AbortSignal;
  /** Who asked for the run and why: named in the activation record of a promotion (`--by`, `--reason`). */
  asked?: { by: string; reason: string };
}

/**
 * Runs the retraining CLI for `model` and resolves with its outcome; never rejects. Exit 0: the
 * report the CLI names on its last line is read (`decided`, promoted or held). Exit 1 saying
 * "too little history" or "nothing new to train on": `decided`, held, with that message as the
 * reason (expected outcomes on a young history, or one the line added nothing to since the
 * last run). Anything else: `failed`, with the CLI's own message. The child ends itself once
 * this process is gone (`kill -9`: see {@link PARENT_WATCH}), under Node and Deno alike.
 *
 * @example const result = await runRetrainChild({ model: "pump", env, signal });
 */
export async function runRetrainChild(o: RetrainChildOptions): Promise<RetrainResult> {
  // The same entry the services use: Deno runs TypeScript itself, Node through run_ts.mjs.
  // `--by=VALUE`: a name that starts with "--" is still a value, never an option.
  const options = [
    "--model",
    o.model,
    ...(o.asked ? [`--by=${o.asked.by}`, `--reason=${o.asked.reason}`] : []),
  ];
  const [command, args] =
    "Deno" in globalThis
      ? [process.execPath, ["run", "-A", "--preload", PARENT_WATCH, CLI, ...options]]
      : [process.execPath, ["--import", PARENT_WATCH, RUN_TS, CLI, ...options]];
  let stdout = "";
  let stderr = "";
  let exit: { code: number | null; signal: string | null };
  try {
    // The engine's environment (PATH, library paths, telemetry) with its parsed settings on
    // top, so the child judges with exactly the settings the engine scores with.
    const child = spawn(command, args, {
      env: { ...process.env, ...o.env, RETRAIN_PARENT_PID: String(process.pid) },
      stdio: ["ignore", "pipe", "pipe"],
      signal: o.signal,
      killSignal: "SIGTERM",
    });
    try {
      if (child.pid !== undefined) setPriority(child.pid, NICE);
    } catch {
      // not allowed here: the CLI lowers its own priority once it runs
    }
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr = (stderr + chunk).slice(-STDERR_KEEP);
    });
    exit = await new Promise((resolve, reject) => {
      child.once("error", reject);
      child.once("close", (code, signal) => resolve({ code, signal }));
    });
  } catch (error) {
    if (o.signal.aborted) return failed("stopped: the engine shut down during the run");
    return failed(`the retraining process could not run: ${(error as Error).message}`);
  }
  if (o.signal.aborted) return failed("stopped: the engine shut down during the run");
  const message = lastMessage(stderr);
  if (exit.code === 0) return readReport(stdout);
  if (exit.code === 1 && EXPECTED_HOLD.test(message)) {
    return { outcome: "decided", decision: "held", reasons: [message] };
  }
  const how = exit.code === null ? `was killed (${exit.signal})` : `exited ${exit.code}`;
  return failed(`the retraining process ${how}: ${message || "no message"}`);
}

async function readReport(stdout: string): Promise<RetrainResult> {
  // The CLI's summary ends with `report: PATH`.
  const path = /^report: (.+)$/m.exec(stdout)?.[1];
  if (!path) return failed("the retraining process named no report");
  let report: v.InferOutput<typeof reportSchema>;
  try {
    report = v.parse(reportSchema, JSON.parse(await readFile(path, "utf8")));
  } catch (error) {
    return failed(`the report ${path} cannot be read: ${(error as Error).message}`);
  }
  return {
    outcome: "decided",
    decision: report.decision,
    candidate_version: report.candidate_version,
    activated: report.activated !== null,
    reasons: report.reasons,
  };
}

/** The CLI's own message (`retrain: ...`, first line of it), else the last line it wrote. */
function lastMessage(stderr: string): string {
  const lines = stderr.split("\n").filter((l) => l.trim() !== "");
  const at = lines.findLastIndex((l) => l.startsWith("retrain: "));
  return (at >= 0 ? lines[at].slice("retrain: ".length) : (lines.at(-1) ?? "")).slice(0, 2000);
}

const failed = (error: string): RetrainResult => ({ outcome: "failed", reasons: [], error });
