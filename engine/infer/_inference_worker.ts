// Worker-thread entry of the ONNX session: inference runs here so it never blocks the event loop.
import { parentPort, workerData } from "node:worker_threads";
import { createLogger } from "../../telemetry/logger.ts";
import { type RunNames, runInChunks } from "./_run_chunks.ts";
import { type Device, type ExecutionProvider, openSession } from "./execution_provider.ts";

export interface InferenceWorkerSetup {
  path: string;
  device: Device;
  /** consola numeric level of the parent's logger. */
  logLevel: number;
  /** Intra-op threads (undefined: ONNX Runtime's default, one per core). */
  threads?: number;
}

/** One batch: `dims` = [batch, window, features]; every buffer is transferred and comes back. */
export interface InferenceJob extends RunNames {
  dims: [number, number, number];
  input: ArrayBuffer;
  output: ArrayBuffer;
  /** `[batch, features]` float32 severities, when the model has them. */
  severity?: ArrayBuffer;
  /** `[batch, features]` int32 statistic indices, when the model has them. */
  statistic?: ArrayBuffer;
}

export type InferenceWorkerReply =
  | {
      type: "ready";
      provider: ExecutionProvider;
      inputNames: string[];
      outputNames: string[];
      inputShapes: Record<string, (number | string)[]>;
    }
  | { type: "failed"; message: string }
  | {
      type: "scored";
      input: ArrayBuffer;
      output: ArrayBuffer;
      severity?: ArrayBuffer;
      statistic?: ArrayBuffer;
      error?: string;
    };

const port = parentPort;
if (port) {
  const setup = workerData as InferenceWorkerSetup;
  const log = createLogger({ service: "engine" });
  log.level = setup.logLevel;
  try {
    const { session, provider } = await openSession(setup.path, setup.device, log, setup.threads);
    const inputShapes: Record<string, (number | string)[]> = {};
    for (const m of session.inputMetadata) {
      if (m.isTensor) inputShapes[m.name] = [...m.shape] as (number | string)[];
    }
    // Jobs run one after another, in the order posted (the parent may post the next one while
    // one runs, and reads the replies in that order).
    let queue = Promise.resolve();
    const jobs = port;
    jobs.on("message", (job: InferenceJob | "close") => {
      queue = queue.then(() => runJob(job));
    });
    async function runJob(job: InferenceJob | "close") {
      if (job === "close") {
        await session.release();
        jobs.close();
        return;
      }
      let error: string | undefined;
      try {
        await runInChunks(
          session,
          job,
          job.dims,
          new Float32Array(job.input),
          new Float32Array(job.output),
          {
            severity: job.severity && new Float32Array(job.severity),
            statistic: job.statistic && new Int32Array(job.statistic),
          },
        );
      } catch (e) {
        error = e instanceof Error ? (e.stack ?? e.message) : String(e);
      }
      const reply: InferenceWorkerReply = {
        type: "scored",
        input: job.input,
        output: job.output,
        severity: job.severity,
        statistic: job.statistic,
        error,
      };
      const buffers = [job.input, job.output, job.severity, job.statistic];
      jobs.postMessage(
        reply,
        buffers.filter((b) => b !== undefined),
      );
    }
    const ready: InferenceWorkerReply = {
      type: "ready",
      provider,
      inputNames: [...session.inputNames],
      outputNames: [...session.outputNames],
      inputShapes,
    };
    port.postMessage(ready);
  } catch (e) {
    const failed: InferenceWorkerReply = { type: "failed", message: (e as Error).message };
    port.postMessage(failed);
  }
}
