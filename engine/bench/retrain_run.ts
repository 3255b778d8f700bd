// Retraining's cost beside a live engine: record clean frames, run `npm run retrain` as the scheduler does, measure the engine meanwhile.
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { setPriority, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { engineConfigSchema, parseConfig } from "../../contracts/config.ts";
import { parseModelMetadata } from "../../contracts/model.ts";
import { createPlant } from "../../models/signal/mod.ts";
import { readHistory } from "../history/mod.ts";
import { ModelRegistry } from "../infer/registry.ts";
import { retrainEnvOf } from "../retrain/from_config.ts";
import { startEngineProcess } from "./engine_process.ts";
import { dirBytes, drained, type Stats } from "./history_hot_path.ts";
import { type Client, createClient, type LoadOutcome } from "./load.ts";
import { round } from "./micro.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const RUN_TS = join(ROOT, "run_ts.mjs");
const CLI = join(ROOT, "models/retrain/cli.ts");
export const MODEL = "featurewise_ocsvm";
/** As `engine/retrain/retrain_child.ts` lowers the child (the CLI also lowers itself). */
const NICE = 10;
const BINARY = { "content-type": "application/octet-stream" };
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A temporary registry holding the committed model as the active version, and an empty history. */
async function retrainWorkspace() {
  const root = await mkdtemp(join(tmpdir(), "bench-retrain-"));
  const registryDir = join(root, "models");
  const historyDir = join(root, "history");
  const dataDir = join(root, "data");
  await mkdir(dataDir);
  const source = new URL("../../models/", import.meta.url);
  const onnx = await readFile(new URL(`${MODEL}.onnx`, source));
  const meta = parseModelMetadata(
    JSON.parse(await readFile(new URL(`${MODEL}.json`, source), "utf8")),
  );
  // The first version written is activated.
  await new ModelRegistry(registryDir).write(onnx, meta, { by: "bench" });
  return {
    root,
    registryDir,
    historyDir,
    dataDir,
    meta,
    remove: () => rm(root, { recursive: true, force: true }),
  };
}

/** Posts `n` consecutive clean plant frames on one stream, 1 s apart in plant time, each once accepted. */
async function recordClean(client: Client, nFeatures: number, n: number): Promise<number> {
  const plant = createPlant({ nFeatures, noiseSeed: 11 });
  const t0 = Date.now() - (n + 60) * 1000;
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    const body = new Uint8Array(plant.next().buffer.slice(0));
    const headers = { ...BINARY, "x-stream-id": "train-0", "x-timestamp": String(t0 + i * 1000) };
    for (;;) {
      const { status } = await client.post("/data-enqueue", body, headers);
      if (status === 202) break;
      if (status !== 429) throw new Error(`recording frame ${i}: HTTP ${status}`);
      await pause(2);
    }
  }
  return (performance.now() - start) / 1000;
}

/** Clean plant frames on `steady-0` at `rate` frames/s (open loop, reception time) until stopped. */
function steadyLoad(client: Client, nFeatures: number, rate: number) {
  const plant = createPlant({ nFeatures, noiseSeed: 12 });
  const out: LoadOutcome = { sent: 0, accepted: 0, busy: 0, failed: 0, seconds: 0 };
  const stop = new AbortController();
  const start = performance.now();
  const inflight: Promise<void>[] = [];
  const running = (async () => {
    for (let i = 0; !stop.signal.aborted; i++) {
      const wait = start + (i * 1000) / rate - performance.now();
      if (wait > 0) await pause(wait);
      if (stop.signal.aborted) break;
      const body = new Uint8Array(plant.next().buffer.slice(0));
      out.sent++;
      inflight.push(
        client.post("/data-enqueue", body, { ...BINARY, "x-stream-id": "steady-0" }).then(
          ({ status }) => {
            if (status === 202) out.accepted++;
            else if (status === 429) out.busy++;
            else out.failed++;
          },
          () => {
            out.failed++;
          },
        ),
      );
    }
  })();
  return {
    async stop(): Promise<LoadOutcome> {
      stop.abort();
      await running;
      await Promise.all(inflight);
      out.seconds = round((performance.now() - start) / 1000, 1);
      return out;
    },
  };
}

export interface CliRun {
  exit_code: number | null;
  wall_s: number;
  /** From /proc while it ran (sampled every 250 ms: the last sample before it exits). */
  cpu_s: number;
  rss_max_mb: number;
  /** Its `[retrain]` progress lines, with the seconds since its start when each arrived. */
  progress: { t_s: number; line: string }[];
  decision: string | null;
  reasons: string[];
  candidate_version: string | null;
  frames_read: number | null;
  training_frames: number | null;
  stderr_tail: string;
}

/** `npm run retrain -- --model NAME` as `engine/retrain/retrain_child.ts` runs it: run_ts.mjs, nice 10, the engine's settings. */
async function runRetrainCli(env: Record<string, string>): Promise<CliRun> {
  const start = performance.now();
  const since = () => round((performance.now() - start) / 1000, 2);
  const child = spawn(process.execPath, [RUN_TS, CLI, "--model", MODEL], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  try {
    if (child.pid !== undefined) setPriority(child.pid, NICE);
  } catch {
    // not allowed here: the CLI lowers its own priority
  }
  const progress: { t_s: number; line: string }[] = [];
  let stdout = "";
  let stderr = "";
  let partial = "";
  child.stdout.setEncoding("utf8").on("data", (c: string) => {
    stdout += c;
  });
  child.stderr.setEncoding("utf8").on("data", (c: string) => {
    stderr = (stderr + c).slice(-8192);
    const lines = (partial + c).split("\n");
    partial = lines.pop() ?? "";
    for (const l of lines)
      if (l.startsWith("[retrain] ")) progress.push({ t_s: since(), line: l.slice(10) });
  });
  let cpuTicks = 0;
  let rssMax = 0;
  const sampler = setInterval(async () => {
    const [stat, status] = await Promise.all([
      readFile(`/proc/${child.pid}/stat`, "utf8").catch(() => ""),
      readFile(`/proc/${child.pid}/status`, "utf8").catch(() => ""),
    ]);
    // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields.length > 13) cpuTicks = Math.max(cpuTicks, Number(fields[11]) + Number(fields[12]));
    const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
    if (kb) rssMax = Math.max(rssMax, Number(kb) * 1024);
  }, 250);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (c) => resolve(c));
  }).finally(() => clearInterval(sampler));
  const wall = since();
  const path = /^report: (.+)$/m.exec(stdout)?.[1];
  // biome-ignore lint/suspicious/noExplicitAny: the report as the CLI wrote it
  const report: any = path ? JSON.parse(await readFile(path, "utf8")) : undefined;
  return {
    exit_code: code,
    wall_s: wall,
    cpu_s: round(cpuTicks / 100, 2),
    rss_max_mb: round(rssMax / 2 ** 20, 1),
    progress,
    decision: report?.decision ?? null,
    reasons: report?.reasons ?? [],
    candidate_version: report?.candidate_version ?? null,
    frames_read: report?.data.frames_read ?? null,
    training_frames: report?.data.training.frames ?? null,
    stderr_tail: report ? "" : stderr.split("\n").slice(-6).join("\n"),
  };
}

const latencyOf = (s: Stats) => ({
  count: s.latency_ms.count as number,
  p50: s.latency_ms.p50 as number,
  p99: s.latency_ms.p99 as number,
  max: s.latency_ms.max as number,
});

export interface RetrainUnderLoad {
  rate: number;
  before: ReturnType<typeof latencyOf> & { seconds: number };
  during: ReturnType<typeof latencyOf>;
  load: LoadOutcome;
  retrain: CliRun;
}

export interface RetrainCostResult {
  recorded: {
    frames_sent: number;
    send_s: number;
    frames_read: number;
    chunk_bytes: number;
    bytes_per_frame: number;
  };
  runs: RetrainUnderLoad[];
}

/**
 * One engine on a temporary registry (the committed model active) and history: `frames` clean
 * plant frames recorded, then per rate in `rates` a steady load, `beforeS` seconds measured, and
 * the retraining CLI run beside it (the engine's latency measured while it runs).
 */
export async function retrainCost(
  o: { frames: number; rates: number[]; beforeS: number },
  log: (line: string) => void,
): Promise<RetrainCostResult> {
  const ws = await retrainWorkspace();
  const nFeatures = ws.meta.n_features;
  // Every frame recorded (the default keeps one run in 24): the retraining needs `frames` now.
  const env = {
    MODEL_DIR: ws.registryDir,
    HISTORY_DIR: ws.historyDir,
    DEFAULT_MODEL_NAME: MODEL,
    HISTORY_EVERY_N: "1",
  };
  try {
    const engine = await startEngineProcess({
      QUEUE_MAX_SIZE: "100",
      DATA_DIR: ws.dataDir,
      ...env,
    });
    const client = createClient(engine.port);
    try {
      log(`recording ${o.frames} clean plant frames through the engine...`);
      const sendS = await recordClean(client, nFeatures, o.frames);
      await drained(client);
      await pause(2500); // the recorder writes every second
      const dir = join(ws.historyDir, MODEL);
      const read = await readHistory(dir, { model: MODEL });
      const chunkBytes = await dirBytes(dir).then(async (all) => {
        const index = await readFile(join(dir, "index.json")).catch(() => new Uint8Array(0));
        return all - index.length;
      });
      const recorded = {
        frames_sent: o.frames,
        send_s: round(sendS, 1),
        frames_read: read.frames.length,
        chunk_bytes: chunkBytes,
        bytes_per_frame: round(chunkBytes / read.frames.length, 1),
      };
      log(`  ${recorded.frames_read} frames on disk, ${recorded.bytes_per_frame} bytes each`);
      const cliEnv = retrainEnvOf(
        parseConfig(engineConfigSchema, { ...env, DATA_DIR: ws.dataDir }),
      );
      const runs: RetrainUnderLoad[] = [];
      for (const rate of o.rates) {
        const steady = steadyLoad(client, nFeatures, rate);
        // The stream's first frames fill its window; then the measured stretch before.
        await pause(Math.max(2, 6 / rate) * 1000);
        await client.getJson("/stats/reset");
        log(`${rate} frame(s)/s: ${o.beforeS} s before retraining...`);
        await pause(o.beforeS * 1000);
        const before = latencyOf(await client.getJson("/stats"));
        await client.getJson("/stats/reset");
        log(`${rate} frame(s)/s: retraining (npm run retrain, nice ${NICE})...`);
        const retrain = await runRetrainCli(cliEnv);
        const during = latencyOf(await client.getJson("/stats"));
        const load = await steady.stop();
        log(
          `  ${retrain.wall_s} s, ${retrain.decision ?? `exit ${retrain.exit_code}`}; p50/p99 before ${before.p50}/${before.p99}, during ${during.p50}/${during.p99} ms`,
        );
        runs.push({ rate, before: { ...before, seconds: o.beforeS }, during, load, retrain });
      }
      return { recorded, runs };
    } finally {
      client.close();
      await engine.stop();
    }
  } finally {
    await ws.remove();
  }
}
