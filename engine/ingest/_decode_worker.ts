// Worker-thread entry of the decode pool: inflates and scans bodies into a shared output slab.
import { parentPort, workerData } from "node:worker_threads";
import { HttpError } from "../../contracts/error.ts";
import { createFrameDecoder, type DecodeJob } from "./frame_decoder.ts";
import { ModelLayouts, type ModelLayoutsSpec } from "./model_layouts.ts";

/** What the pool sends: one body, transferred. */
export interface WorkerJob extends DecodeJob {
  body: Uint8Array;
}

/** What the worker answers: the JSON envelope, or the HttpError to rethrow, or a crash. */
export type WorkerReply = (
  | { ok: true; model: number; streamId?: string; timestamp?: number; checksum?: number }
  | { ok: false; status: number; code: string; message: string }
  | { ok: false; crash: string }
) & {
  /** The job's body buffer, transferred back for reuse. */
  body?: ArrayBuffer;
};

export interface WorkerSetup {
  layouts: ModelLayoutsSpec;
  maxDecompressedBytes: number;
  /** The worker's output slab: the largest model's size in float32, read after each reply. */
  output: SharedArrayBuffer;
}

const port = parentPort;
if (port) {
  const setup = workerData as WorkerSetup;
  const decoder = createFrameDecoder(new ModelLayouts(setup.layouts), setup.maxDecompressedBytes);
  const output = new Float32Array(setup.output);
  port.on("message", function decodeJob(job: WorkerJob) {
    let reply: WorkerReply;
    try {
      reply = { ok: true, ...decoder.decode(job.body, job, output) };
    } catch (error) {
      reply =
        error instanceof HttpError
          ? { ok: false, status: error.status, code: error.code, message: error.message }
          : { ok: false, crash: (error as Error)?.stack ?? String(error) };
    }
    const body = job.body.buffer;
    if (body instanceof ArrayBuffer) {
      reply.body = body;
      port.postMessage(reply, [body]);
    } else port.postMessage(reply);
  });
  // Tells the pool the module loaded: a failure before this means workers cannot run here.
  port.postMessage("ready");
}
