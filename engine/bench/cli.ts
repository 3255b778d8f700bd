// `npm run bench`: the engine as a separate process under HTTP load, plus the in-process floor.
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { availableParallelism, cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { commandLine, outputFileProblem } from "../../contracts/command_line.ts";
import { engineConfigSchema, parseConfig } from "../../contracts/config.ts";
import { startEngineProcess } from "./engine_process.ts";
import { makeBenchFrames } from "./frames.ts";
import {
  type Client,
  closedLoop,
  createClient,
  type LoadOutcome,
  type LoadStream,
  openLoop,
} from "./load.ts";
import { measureFloor, measureMicro, round } from "./micro.ts";
import { renderReport, runFailures } from "./report.ts";
import { type SwapResult, swapPhases } from "./swap.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const MODELS = new URL("../../models/", import.meta.url);
/** Frames of the simulated plant a model of another width is trained on (as `--models 2`'s). */
const OWN_MODEL_FRAMES = 1000;

const USAGE = `usage: npm run bench -- [--quick] [--json FILE] [--features N] [--connections N] [--workers N]
                          [--env KEY=VALUE ...] [--bus memory|nats] [--swap]
       npm run bench -- --models 2 [--swap | --flood] [--quick] [--env KEY=VALUE ...] [--json FILE]
       npm run bench -- --context [--quick] [--json FILE]
       npm run bench -- --retrain [--quick] [--json FILE]

The engine as a separate process under HTTP load, and the in-process floor (engine/bench/README.md).
--quick short phases; --features frame width (default the committed model's, 25000; another width
trains a model of that width on the simulated plant for the run, not with --swap);
--connections concurrent streams (default 8); --workers INGEST_WORKERS (default 0 = automatic);
--env KEY=VALUE any engine variable, passed through (repeatable); --bus nats then the same load
through NATS JetStream; --swap then a model version activated under 100 frames/s; --models 2 only
two models in one engine; --context only what incident context costs; --retrain only what the
training history and retraining cost. A run in which the engine refused frames or scored none
exits 1, saying where.`;

// A mistake in the arguments is printed with the usage, exit status 2, before any work.
const cli = commandLine("bench", USAGE, parseBenchArgs);
const { parsed } = cli;
// Annotated: a call to it then narrows like a throw.
const usageError: (message: string) => never = cli.usageError;
const args = parsed.values;

function parseBenchArgs(argv: string[]) {
  return parseArgs({
    args: argv,
    options: {
      help: { type: "boolean", short: "h", default: false },
      json: { type: "string" },
      quick: { type: "boolean", default: false },
      // No defaults here for the load run's options: given with another mode they are refused.
      workers: { type: "string" },
      connections: { type: "string" },
      features: { type: "string" },
      env: { type: "string", multiple: true, default: [] },
      // `--bus nats`: after the in-memory run, the same load through an ingest replica and 1, then
      // 2, inference workers on NATS JetStream (NATS_URL, default the local server).
      bus: { type: "string" },
      // `--swap`: then a model version activated while 100 frames/s flow (before, during, after).
      swap: { type: "boolean", default: false },
      // `--context`: only what incident context costs (engine/bench/context.ts), then exit.
      context: { type: "boolean", default: false },
      // `--models 2`: only the engine serving two models (models_bench.ts), then exit: with
      // `--swap` one model's version switched under load, with `--flood` one model flooded beside
      // the other's steady streams; neither: both.
      models: { type: "string" },
      flood: { type: "boolean", default: false },
      // `--retrain`: only what the training history and retraining cost (retrain_cost.ts), then exit.
      retrain: { type: "boolean", default: false },
    },
  });
}

/** An integer option within [min, max], checked before any work so a typo never runs as NaN. */
function intArg(name: string, raw: string | undefined, min: number, max: number): number {
  const n = Number(raw);
  if (raw === undefined || raw.trim() === "" || !Number.isInteger(n) || n < min || n > max) {
    usageError(`'--${name}' must be an integer ${min}..${max}, got '${raw}'`);
  }
  return n;
}

/** `--env KEY=VALUE` passes engine settings through (e.g. --env BATCH_MAX_DELAY_MS=0). */
function envPairs(pairs: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    const key = eq < 0 ? pair : pair.slice(0, eq);
    if (eq < 0 || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) {
      usageError(`'--env' must be KEY=VALUE (a variable name, '=', its value), got '${pair}'`);
    }
    env[key] = pair.slice(eq + 1);
  }
  return env;
}

const quoted = (names: string[]) => names.map((name) => `'--${name}'`).join(", ");

if (args.features !== undefined) intArg("features", args.features, 1, 1_000_000);
const connections = intArg("connections", args.connections ?? "8", 1, 1024);
// INGEST_WORKERS' own range (contracts/config.ts).
const ingestWorkers = String(intArg("workers", args.workers ?? "0", 0, 64));
const extraEnv = envPairs(args.env!);
if (args.models !== undefined && !["1", "2"].includes(args.models))
  usageError(`'--models' must be 1 or 2, got '${args.models}'`);
if (args.flood && args.models !== "2") usageError("'--flood' needs '--models 2'");
const frameBus = args.bus ?? "memory";
if (!["memory", "nats"].includes(frameBus)) {
  usageError(`'--bus' must be memory or nats, got '${frameBus}'`);
}
// --context, --retrain and --models 2 are runs of their own: the load run's options mean nothing there.
const modes = [
  args.context ? "--context" : undefined,
  args.retrain ? "--retrain" : undefined,
  args.models === "2" ? "--models 2" : undefined,
].filter((mode) => mode !== undefined);
if (modes.length > 1)
  usageError(`${modes.map((m) => `'${m}'`).join(", ")} are separate runs: give one`);
const mode = modes[0];
if (mode !== undefined) {
  const loadOnly = (["features", "connections", "workers", "bus"] as const).filter(
    (name) => args[name] !== undefined,
  );
  if (loadOnly.length > 0) {
    usageError(`${quoted(loadOnly)} apply only to the load run, not with '${mode}'`);
  }
  if (mode !== "--models 2" && args.swap) {
    usageError(`'--swap' applies to the load run or '--models 2', not with '${mode}'`);
  }
  if (mode !== "--models 2" && args.env!.length > 0) {
    usageError(`'--env' applies to the load run or '--models 2', not with '${mode}'`);
  }
}
if (args.json !== undefined) {
  const problem = await outputFileProblem(args.json);
  if (problem) usageError(`'--json ${args.json}': ${problem}`);
}

/** Says why a run's numbers measure nothing (frames refused, no latency sample): exit status 1. */
function judge(failures: string[]): void {
  if (failures.length === 0) return;
  console.error(`bench: FAILED, these numbers measure nothing:\n  ${failures.join("\n  ")}`);
  process.exitCode = 1;
}

if (args.context) {
  const { measureContext } = await import("./context.ts");
  const defaults = parseConfig(engineConfigSchema, {});
  const context = await measureContext({
    quick: args.quick!,
    frames: defaults.EVIDENCE_HISTORY_FRAMES,
    maxMb: defaults.EVIDENCE_HISTORY_MAX_MB,
    alertMaxBytes: defaults.EVIDENCE_ALERT_MAX_BYTES,
    maxAlertFeatures: defaults.MAX_ALERT_FEATURES,
  });
  console.log(JSON.stringify(context, null, 2));
  if (args.json) await writeFile(args.json, `${JSON.stringify({ context }, null, 2)}\n`);
  judge(runFailures(context));
  process.exit();
}
if (args.retrain) {
  const { runRetrainBench } = await import("./retrain_cost.ts");
  judge(runFailures(await runRetrainBench({ quick: args.quick!, json: args.json })));
  process.exit();
}
if (args.models === "2") {
  const { runTwoModelBench } = await import("./models_bench.ts");
  const both = !args.swap && !args.flood;
  const result = await runTwoModelBench({
    quick: args.quick!,
    swap: both || args.swap!,
    flood: both || args.flood!,
    env: extraEnv,
    json: args.json,
  });
  judge(runFailures(result));
  process.exit();
}

/** The committed default model's width: frames of another width need a model of their own. */
async function committedWidth(): Promise<number> {
  const meta = JSON.parse(await readFile(new URL("featurewise_ocsvm.json", MODELS), "utf8"));
  return meta.n_features as number;
}

const committed = await committedWidth();
const nFeatures = args.features === undefined ? committed : Number(args.features);
// The engine loads the committed model unless told otherwise (--env MODEL_DIR=...).
const ownModel = nFeatures !== committed && extraEnv.MODEL_DIR === undefined;
if (nFeatures !== committed && args.swap) {
  usageError(
    `'--swap' activates versions of the committed ${committed}-feature model: not with '--features ${nFeatures}'`,
  );
}

const quick = args.quick!;
const seconds = {
  micro: quick ? 0.5 : 2,
  sustained: quick ? 5 : 15,
  slow: quick ? 5 : 20,
  fast: quick ? 10 : 60,
  // The scale-out phases run twice (1 and 2 workers): shorter, the same rate.
  busFast: quick ? 10 : 30,
};

// biome-ignore lint/suspicious/noExplicitAny: /stats as the engine serves it
type Stats = any;
const FORM = { "content-type": "application/x-www-form-urlencoded" };
const BINARY = { "content-type": "application/octet-stream" };

/**
 * Trains the default model at `features` wide on the simulated plant with `npm run train`'s CLI,
 * into a fresh folder (the engine's MODEL_DIR): the frames below come from the same plant.
 */
async function trainOwnModel(features: number): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "bench-model-"));
  const cliArgs = ["--import", "tsx", "models/train/cli.ts", "--model", "featurewise_ocsvm"];
  cliArgs.push("--flat", "--out", dir, "--features", String(features));
  cliArgs.push("--frames", String(OWN_MODEL_FRAMES));
  const child = spawn(process.execPath, cliArgs, {
    cwd: ROOT,
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (chunk) => {
    stderr += chunk;
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on("error", reject);
    child.on("exit", resolve);
  });
  if (code !== 0) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`training the ${features}-feature model failed (exit ${code}):\n${stderr}`);
  }
  return dir;
}

let modelDir: string | undefined;
if (ownModel) {
  console.error(
    `training a ${nFeatures}-feature model on ${OWN_MODEL_FRAMES} simulated frames for the run (the committed one has ${committed})...`,
  );
  modelDir = await trainOwnModel(nFeatures);
}
const modelEnv: Record<string, string> = modelDir ? { MODEL_DIR: modelDir } : {};
const removeModel = () =>
  modelDir ? rm(modelDir, { recursive: true, force: true }) : Promise.resolve();

console.error(`building ${nFeatures}-feature frames...`);
// 64 frames, replayed back and forth: the turns (a window like 61, 62, 63, 62, 61) look unusual
// to the model, so fewer turns keep alerts at the rate of a plant with occasional anomalies.
const frames = makeBenchFrames({ nFeatures, count: 64, streams: connections });
// One stream per connection, so each stream's frames arrive in order (as one producer sends).
const jsonStreams: LoadStream[] = frames.gzipJsonByStream.map((bodies) => ({
  bodies,
  headers: FORM,
}));
const binaryStreams: LoadStream[] = jsonStreams.map((_, k) => ({
  bodies: frames.binary,
  headers: { ...BINARY, "x-stream-id": `bench-${k}` },
}));
const size = (list: Uint8Array[]) =>
  Math.round(list.reduce((s, b) => s + b.length, 0) / list.length);
console.error("measuring the floor and the micro-benchmark in-process...");
const floor = measureFloor(frames, seconds.micro * 2);
const micro = measureMicro(frames, seconds.micro);

console.error("starting the engine...");
const engine = await startEngineProcess({
  QUEUE_MAX_SIZE: "100",
  INGEST_WORKERS: ingestWorkers,
  ...modelEnv,
  ...extraEnv,
}).catch(async (error: Error) => {
  await removeModel();
  throw error;
});
const client = createClient(engine.port);
const rss: { t: number; bytes: number }[] = [];
const t0 = performance.now();
const sampler = setInterval(async () => {
  const bytes = await engine.rss();
  if (bytes) rss.push({ t: round((performance.now() - t0) / 1000, 1), bytes });
}, 500);

/** Waits until every accepted frame is scored (the queue drained); returns the final stats. */
async function drained(c: Client): Promise<Stats> {
  const deadline = AbortSignal.timeout(60_000);
  let last = -1;
  let stable = 0;
  for (;;) {
    const stats: Stats = await c.getJson("/stats");
    if (stats.queue.depth === 0 && stats.frames.scored >= stats.frames.accepted) return stats;
    // Frames that never complete a window (a stream's first ones) stop the count moving.
    stable = stats.frames.scored === last && stats.queue.depth === 0 ? stable + 1 : 0;
    if (stable >= 20 || deadline.aborted) return stats;
    last = stats.frames.scored;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function sustained(streams: LoadStream[]) {
  await client.getJson("/stats/reset");
  const start = performance.now();
  const load = await closedLoop(client, streams, { seconds: seconds.sustained });
  const stats = await drained(client);
  const elapsed = (performance.now() - start) / 1000;
  return { load, stats, frames_per_s: round(stats.frames.scored / elapsed, 1) };
}

async function latency(rate: number, secs: number) {
  await client.getJson("/stats/reset");
  const rssBefore = await engine.rss();
  const load: LoadOutcome = await openLoop(client, frames.gzipJson, FORM, { rate, seconds: secs });
  const stats = await drained(client);
  return { rate, load, stats, rss_before: rssBefore, rss_after: await engine.rss() };
}

/** Sums the workers' counters; latency percentiles are the highest worker's (no merge of samples). */
async function busStats(ingest: Client, workers: Client[]) {
  const i: Stats = await ingest.getJson("/stats");
  const w: Stats[] = await Promise.all(workers.map((c) => c.getJson("/stats")));
  const max = (key: string) => Math.max(0, ...w.map((s) => s.latency_ms[key]));
  return {
    accepted: i.frames.accepted as number,
    rejected: i.frames.rejected as number,
    scored: w.reduce((n, s) => n + s.frames.scored, 0) as number,
    latency_ms: {
      count: w.reduce((n, s) => n + s.latency_ms.count, 0),
      p50: max("p50"),
      p90: max("p90"),
      p99: max("p99"),
      max: max("max"),
    },
    partitions: w.map((s) => s.worker.partitions.length),
  };
}

/** Waits until the workers scored every accepted frame (or their count stops moving for 1 s). */
async function busDrained(ingest: Client, workers: Client[]) {
  const deadline = AbortSignal.timeout(120_000);
  let last = -1;
  let stable = 0;
  for (;;) {
    const s = await busStats(ingest, workers);
    if (s.scored >= s.accepted || deadline.aborted) return s;
    stable = s.scored === last ? stable + 1 : 0;
    if (stable >= 40) return s;
    last = s.scored;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** One scale-out phase: a fresh stream, `workers` workers and one ingest replica as processes. */
async function busPhase(workers: number) {
  const stream = `BENCH_${process.pid}_${workers}`;
  const common = {
    ...modelEnv,
    ...extraEnv,
    FRAME_BUS: "nats",
    NATS_STREAM: stream,
    NATS_STREAM_MAX_BYTES: String(8 * 2 ** 30),
    QUEUE_MAX_SIZE: "100",
    INGEST_WORKERS: ingestWorkers,
  };
  const procs = await Promise.all(
    Array.from({ length: workers }, () => startEngineProcess({ ...common, ENGINE_ROLE: "worker" })),
  );
  procs.push(await startEngineProcess({ ...common, ENGINE_ROLE: "ingest" }));
  const ingestProc = procs[procs.length - 1];
  const ingest = createClient(ingestProc.port);
  const workerClients = procs.slice(0, workers).map((p) => createClient(p.port));
  const all = [ingest, ...workerClients];
  const reset = () => Promise.all(all.map((c) => c.getJson("/stats/reset")));
  const peakRss: number[] = procs.map(() => 0);
  const sampleRss = setInterval(async () => {
    for (const [k, p] of procs.entries()) peakRss[k] = Math.max(peakRss[k], (await p.rss()) ?? 0);
  }, 500);
  try {
    const deadline = AbortSignal.timeout(60_000);
    while ((await busStats(ingest, workerClients)).partitions.reduce((a, b) => a + b, 0) < 32) {
      if (deadline.aborted) throw new Error("workers did not take every partition within 60 s");
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await closedLoop(ingest, binaryStreams, { seconds: 3 });
    await busDrained(ingest, workerClients);
    await reset();
    const start = performance.now();
    const load = await closedLoop(ingest, binaryStreams, { seconds: seconds.sustained });
    const loadEnd = performance.now();
    const sustainedStats = await busDrained(ingest, workerClients);
    const elapsed = (performance.now() - start) / 1000;
    const drainS = (performance.now() - loadEnd) / 1000;
    await reset();
    const open = await openLoop(ingest, frames.gzipJson, FORM, {
      rate: 100,
      seconds: seconds.busFast,
    });
    const fastStats = await busDrained(ingest, workerClients);
    return {
      workers,
      sustained_binary: {
        accepted_per_s: round(sustainedStats.accepted / ((loadEnd - start) / 1000), 1),
        scored_per_s: round(sustainedStats.scored / elapsed, 1),
        drain_s: round(drainS, 1),
        load,
        partitions: sustainedStats.partitions,
      },
      latency_100_per_s: { ...fastStats.latency_ms, load: open },
      rss_max_mb: peakRss.map((b) => round(b / 2 ** 20, 1)),
    };
  } finally {
    clearInterval(sampleRss);
    for (const c of all) c.close();
    for (const p of procs) await p.stop();
    await deleteBusStream(stream);
  }
}

async function deleteBusStream(stream: string): Promise<void> {
  const { connect } = await import("@nats-io/transport-node");
  const { jetstreamManager } = await import("@nats-io/jetstream");
  const nc = await connect({ servers: (process.env.NATS_URL ?? "127.0.0.1:4222").split(",") });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.delete(stream).catch(() => {});
  await jsm.streams.delete(`KV_${stream}_leases`).catch(() => {});
  await jsm.streams.delete(`KV_${stream}_incidents`).catch(() => {});
  await nc.close();
}

let failures: string[] = [];
try {
  console.error("warming up...");
  await closedLoop(client, jsonStreams, { seconds: 3 });
  await drained(client);
  console.error(`sustained gzip JSON, ${connections} connections, ${seconds.sustained} s...`);
  const gzipJson = await sustained(jsonStreams);
  console.error(`sustained binary, ${seconds.sustained} s...`);
  const binary = await sustained(binaryStreams);
  console.error(`latency at 1 frame/s, ${seconds.slow} s...`);
  const slow = await latency(1, seconds.slow);
  console.error(`latency at 100 frames/s, ${seconds.fast} s...`);
  const fast = await latency(100, seconds.fast);
  clearInterval(sampler);
  let bus: Record<string, unknown> | undefined;
  if (frameBus === "nats") {
    // The single-process engine is stopped first: the scale-out processes get both cores.
    client.close();
    await engine.stop();
    bus = {};
    for (const workers of [1, 2]) {
      console.error(`scale-out on NATS JetStream: 1 ingest replica, ${workers} worker(s)...`);
      bus[`workers_${workers}`] = await busPhase(workers);
    }
  }

  let swap: SwapResult | undefined;
  if (args.swap) {
    if (frameBus !== "nats") {
      client.close();
      await engine.stop();
    }
    const secs = quick ? 5 : 10;
    console.error(`model activation under 100 frames/s, 3 phases of ${secs} s...`);
    swap = await swapPhases({
      bodies: frames.gzipJson,
      headers: FORM,
      rate: 100,
      seconds: secs,
      env: extraEnv,
    });
  }

  const bySize: Record<string, number> = {};
  for (const s of [slow.stats, fast.stats, gzipJson.stats, binary.stats]) {
    Object.assign(bySize, s.inference_ms.by_batch_size);
  }
  const result = {
    machine: {
      cpu: cpus()[0]?.model ?? "unknown",
      cores: availableParallelism(),
      memory_gib: round(totalmem() / 2 ** 30, 1),
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
    },
    config: {
      features: nFeatures,
      model: ownModel
        ? `trained for the run on ${OWN_MODEL_FRAMES} simulated frames`
        : (extraEnv.MODEL_DIR ?? "committed"),
      queue_max_size: 100,
      workers: ingestWorkers,
      connections,
      quick,
      env: extraEnv,
    },
    frame_bytes: {
      gzip_json: size(frames.gzipJson),
      json: size(frames.json),
      binary: size(frames.binary),
    },
    floor,
    micro,
    sustained: {
      gzip_json: {
        frames_per_s: gzipJson.frames_per_s,
        load: gzipJson.load,
        ratio_to_floor: round(gzipJson.frames_per_s / floor.frames_per_s, 2),
      },
      binary: { frames_per_s: binary.frames_per_s, load: binary.load },
    },
    latency_ms: Object.fromEntries(
      [slow, fast].map((r) => [
        `${r.rate}_per_s`,
        { ...r.stats.latency_ms, load: r.load, rss_before: r.rss_before, rss_after: r.rss_after },
      ]),
    ),
    inference_ms_by_batch_size: bySize,
    ...(bus ? { bus } : {}),
    ...(swap ? { swap } : {}),
    rss: {
      max_mb: round(Math.max(...rss.map((s) => s.bytes)) / 2 ** 20, 1),
      at_100_per_s_start_mb: round((fast.rss_before ?? 0) / 2 ** 20, 1),
      at_100_per_s_end_mb: round((fast.rss_after ?? 0) / 2 ** 20, 1),
      samples: rss,
    },
  };
  console.log(renderReport(result));
  failures = runFailures(result);
  if (args.json) {
    const doc = failures.length > 0 ? { ...result, failures } : result;
    await writeFile(args.json, `${JSON.stringify(doc, null, 2)}\n`);
    console.error(`wrote ${args.json}`);
  }
} finally {
  clearInterval(sampler);
  client.close();
  await engine.stop();
  await removeModel();
}
judge(failures);
