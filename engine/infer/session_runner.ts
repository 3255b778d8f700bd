// Runs the ONNX session: on a worker thread under Node, on the calling thread under Deno.
import { once } from "node:events";
import { availableParallelism } from "node:os";
import type { Logger } from "../../telemetry/logger.ts";
import { spawnWorker } from "../_spawn_worker.ts";
import type {
  InferenceJob,
  InferenceWorkerReply,
  InferenceWorkerSetup,
} from "./_inference_worker.ts";
import { type ExtraOutputs, type RunNames, runInChunks, WINDOWS_PER_RUN } from "./_run_chunks.ts";
import {
  type Device,
  type ExecutionProvider,
  ModelLoadError,
  openSession,
} from "./execution_provider.ts";

/** An open session, wherever it runs. One `run` at a time. */
export interface SessionRunner {
  readonly provider: ExecutionProvider;
  readonly thread: "worker" | "main";
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** The declared shape of an input (symbolic dimensions as strings), if it is a tensor. */
  readonly inputShapes: Readonly<Record<string, readonly (number | string)[]>>;
  /** Windows a caller should pass at once to keep every session busy. */
  readonly windowsPerRun: number;
  /** Scores `dims[0]` windows of `input` into `output` (`dims[0] * dims[2]` values) and `extra`. */
  run(
    io: RunNames,
    dims: [number, number, number],
    input: Float32Array,
    output: Float32Array,
    extra?: ExtraOutputs,
  ): Promise<void>;
  release(): Promise<void>;
}

export interface OpenRunnerOptions {
  path: string;
  device: Device;
  log: Logger;
  /** Where inference runs; default: a worker under Node, the calling thread under Deno. */
  thread?: "worker" | "main";
  /**
   * CPU sessions side by side, each on its own worker with cores / sessions intra-op threads
   * (`INFERENCE_SESSIONS`; 0 or undefined: automatic, one below 4 cores, else cores / 2, at most
   * four). A GPU session is one.
   */
  sessions?: number;
}

const WORKER_URL = new URL("./_inference_worker.ts", import.meta.url);

/**
 * Opens the model for inference. ONNX Runtime for Node runs `session.run` synchronously on the
 * calling thread, so on the event loop a [64, 5, 25000] batch would stall every request for tens
 * of milliseconds; a worker keeps HTTP and decoding responsive while the batch is scored. The
 * batch is copied into a buffer that is transferred (not copied) to the worker and back.
 */
export async function openRunner(options: OpenRunnerOptions): Promise<SessionRunner> {
  const thread = options.thread ?? ("Deno" in globalThis ? "main" : "worker");
  return thread === "main" ? openInThread(options) : openInWorkers(options);
}

/**
 * The model's graph is about a hundred small, memory-bound operators per run: ONNX Runtime's
 * intra-op threads meet at a barrier after each, so one session stops gaining at about four
 * threads. Sessions side by side, scoring different runs of a batch, keep the cores busy
 * between barriers instead. Measured with the default model on a 16-core Xeon (ms a window,
 * runs of 8): one session 1.70 (2 threads), 1.09 (4), 1.04 (8), 1.07 (16); two sessions of 2
 * threads 0.81, four of 2 threads 0.40, four of 4 threads 0.34; each session holds ~80 MB. On 2
 * cores, two one-thread sessions took 0.68 ms a window against 1.12 for one two-thread session,
 * but there ingest needs the same cores, the engine showed no clear gain and its RSS rose past
 * its 300 MB target. Hence, automatically: one session below 4 cores, else cores / 2 sessions,
 * at most four, sharing the cores.
 */
const MAX_AUTO_SESSIONS = 4;
const CORES_FOR_TWO_SESSIONS = 4;

async function openInWorkers(options: OpenRunnerOptions): Promise<SessionRunner> {
  const cores = availableParallelism();
  const auto =
    cores < CORES_FOR_TWO_SESSIONS ? 1 : Math.min(MAX_AUTO_SESSIONS, Math.floor(cores / 2));
  const wanted = options.sessions || auto;
  const sessions = Math.max(1, Math.min(wanted, cores));
  // Below 4 cores one session runs on one thread: with spinning off (execution_provider.ts) a
  // second intra-op thread cut a run of 8 windows' wall time by ~10 % but cost ~40 % more CPU
  // (2 cores: 0.97 against 1.07 ms a window, 1.49 against 1.07 CPU-ms), CPU the request thread
  // and the decode workers need when ingest saturates the cores; single windows gained nothing.
  const threads =
    sessions > 1
      ? Math.max(1, Math.floor(cores / sessions))
      : cores < CORES_FOR_TWO_SESSIONS
        ? 1
        : undefined;
  const first = await openInWorker(options, threads);
  // A GPU gains nothing from a second session; on the CPU each session gets its share of cores.
  const pool = [first];
  try {
    if (first.provider === "cpu") {
      while (pool.length < sessions) {
        pool.push(await openInWorker({ ...options, device: "cpu" }, threads));
      }
    }
  } catch (error) {
    await Promise.all(pool.map((s) => s.release()));
    throw error;
  }
  if (pool.length === 1) return first;
  return {
    provider: first.provider,
    thread: "worker",
    inputNames: first.inputNames,
    outputNames: first.outputNames,
    inputShapes: first.inputShapes,
    windowsPerRun: WINDOWS_PER_RUN * pool.length,
    async run(io, [batch, w, f], input, output, extra = {}) {
      // Runs as even as the batch allows, at most WINDOWS_PER_RUN each, taken in turn by every
      // session: 16 windows are two runs of 8 side by side, 3 windows runs of 2 and 1.
      const size = Math.min(WINDOWS_PER_RUN, Math.ceil(batch / pool.length));
      let next = 0;
      const rows = <T extends Float32Array | Int32Array>(
        a: T | undefined,
        from: number,
        to: number,
      ) => a?.subarray(from * f, to * f) as T | undefined;
      await Promise.all(
        pool.map(async function drain(session) {
          while (next < batch) {
            const start = next;
            const n = Math.min(size, batch - start);
            next += n;
            await session.run(
              io,
              [n, w, f],
              input.subarray(start * w * f, (start + n) * w * f),
              output.subarray(start * f, (start + n) * f),
              {
                severity: rows(extra.severity, start, start + n),
                statistic: rows(extra.statistic, start, start + n),
              },
            );
          }
        }),
      );
    },
    async release() {
      await Promise.all(pool.map((s) => s.release()));
    },
  };
}

async function openInThread({ path, device, log }: OpenRunnerOptions): Promise<SessionRunner> {
  const { session, provider } = await openSession(path, device, log);
  const inputShapes: Record<string, (number | string)[]> = {};
  for (const m of session.inputMetadata)
    if (m.isTensor) inputShapes[m.name] = [...m.shape] as (number | string)[];
  return {
    provider,
    thread: "main",
    windowsPerRun: WINDOWS_PER_RUN,
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    inputShapes,
    run: (io, dims, input, output, extra) => runInChunks(session, io, dims, input, output, extra),
    release: () => session.release(),
  };
}

async function openInWorker(
  { path, device, log }: OpenRunnerOptions,
  threads?: number,
): Promise<SessionRunner> {
  const setup: InferenceWorkerSetup = { path, device, logLevel: log.level, threads };
  const worker = spawnWorker(WORKER_URL, setup);
  // Replies come in the order the jobs were posted (the worker runs them one after another).
  const pending: { resolve(reply: InferenceWorkerReply): void; reject(error: Error): void }[] = [];
  let dead: Error | undefined;
  const next = () =>
    new Promise<InferenceWorkerReply>((resolve, reject) => {
      if (dead) reject(dead);
      else pending.push({ resolve, reject });
    });
  // Set by release: from then on the worker stays referenced until it exits.
  let closing = false;
  worker.on("message", (reply: InferenceWorkerReply) => {
    pending.shift()?.resolve(reply);
    if (pending.length === 0 && !closing) worker.unref();
  });
  const die = (error: Error) => {
    dead ??= error;
    for (const p of pending.splice(0)) p.reject(dead);
  };
  worker.on("error", die);
  worker.on("exit", (code) => die(new Error(`inference worker exited with code ${code}`)));

  const ready = await next().catch(
    (error: Error) => ({ type: "failed", message: error.message }) as const,
  );
  if (ready.type !== "ready") {
    await worker.terminate();
    throw new ModelLoadError(
      ready.type === "failed" ? ready.message : "inference worker did not start",
    );
  }
  // Idle, the worker must not keep the process alive; a run in flight does.
  worker.unref();
  // The worker runs at most WINDOWS_PER_RUN windows per job. Each job takes a set of small
  // buffers, transferred there and back: no copy of the whole batch is kept on either side.
  // Jobs may be posted while others run: the worker queues them, so it starts the next one
  // as soon as it finishes one, without waiting for this thread (busy with requests) to read
  // the reply and post again. A set comes back with its reply and is reused.
  interface Buffers {
    input: ArrayBuffer;
    output: ArrayBuffer;
    severity?: ArrayBuffer;
    statistic?: ArrayBuffer;
  }
  const spare: Buffers[] = [];
  async function runJob(
    io: RunNames,
    dims: [number, number, number],
    input: Float32Array,
    output: Float32Array,
    extra: ExtraOutputs,
  ): Promise<void> {
    const [n, w, f] = dims;
    const b: Buffers = spare.pop() ?? {
      input: new ArrayBuffer(WINDOWS_PER_RUN * w * f * 4),
      output: new ArrayBuffer(WINDOWS_PER_RUN * f * 4),
    };
    if (extra.severity) b.severity ??= new ArrayBuffer(WINDOWS_PER_RUN * f * 4);
    if (extra.statistic) b.statistic ??= new ArrayBuffer(WINDOWS_PER_RUN * f * 4);
    new Float32Array(b.input, 0, n * w * f).set(input);
    const severity = extra.severity ? b.severity : undefined;
    const statistic = extra.statistic ? b.statistic : undefined;
    const job: InferenceJob = {
      dims,
      ...io,
      input: b.input,
      output: b.output,
      severity,
      statistic,
    };
    const replyPromise = next();
    worker.ref();
    const buffers = [b.input, b.output, severity, statistic];
    worker.postMessage(
      job,
      buffers.filter((x) => x !== undefined),
    );
    const reply = await replyPromise;
    if (reply.type !== "scored") throw new Error(`unexpected inference worker reply ${reply.type}`);
    if (!reply.error) {
      output.set(new Float32Array(reply.output, 0, n * f));
      if (extra.severity && reply.severity)
        extra.severity.set(new Float32Array(reply.severity, 0, n * f));
      if (extra.statistic && reply.statistic)
        extra.statistic.set(new Int32Array(reply.statistic, 0, n * f));
    }
    spare.push({
      input: reply.input,
      output: reply.output,
      severity: reply.severity ?? b.severity,
      statistic: reply.statistic ?? b.statistic,
    });
    if (reply.error) throw new Error(`inference failed: ${reply.error}`);
  }
  return {
    provider: ready.provider,
    thread: "worker",
    windowsPerRun: WINDOWS_PER_RUN,
    inputNames: ready.inputNames,
    outputNames: ready.outputNames,
    inputShapes: ready.inputShapes,
    async run(io, [batch, w, f], input, output, extra = {}) {
      const rows = (a: Float32Array | Int32Array | undefined, from: number, to: number) =>
        a?.subarray(from * f, to * f);
      for (let start = 0; start < batch; start += WINDOWS_PER_RUN) {
        const n = Math.min(WINDOWS_PER_RUN, batch - start);
        await runJob(
          io,
          [n, w, f],
          input.subarray(start * w * f, (start + n) * w * f),
          output.subarray(start * f, (start + n) * f),
          {
            severity: rows(extra.severity, start, start + n) as Float32Array | undefined,
            statistic: rows(extra.statistic, start, start + n) as Int32Array | undefined,
          },
        );
      }
    },
    async release() {
      if (dead) return;
      // The worker releases the native session itself; terminate only if it does not exit soon.
      const exited = once(worker, "exit", { signal: AbortSignal.timeout(2000) });
      // Kept alive until it exits: a caller awaiting the release with nothing else pending
      // would otherwise see its process end mid-release (a run still in flight must not unref it
      // when its reply comes).
      closing = true;
      worker.ref();
      worker.postMessage("close");
      await exited.catch(() => worker.terminate());
    },
  };
}
