// A pool of worker threads that inflate and scan frame bodies off the request thread.
import type { Worker } from "node:worker_threads";
import { type ErrorCode, HttpError } from "../../contracts/error.ts";
import { spawnWorker } from "../_spawn_worker.ts";
import type { WorkerJob, WorkerReply, WorkerSetup } from "./_decode_worker.ts";
import {
  createFrameDecoder,
  type DecodedFrame,
  type DecodeJob,
  type FrameDecoder,
} from "./frame_decoder.ts";
import type { ModelLayouts } from "./model_layouts.ts";

/** Where a decoded frame's values go: an array, or one the frame's model lane picks. */
export type FrameTarget = Float32Array | ((model: number) => Float32Array);

interface Pending {
  job: WorkerJob;
  into: FrameTarget;
  resolve(frame: DecodedFrame): void;
  reject(error: Error): void;
}

interface Slot {
  worker: Worker;
  output: Float32Array;
  current: Pending | undefined;
  online: boolean;
}

/** Decodes bodies on worker threads; same results and errors as a FrameDecoder. */
export interface DecodePool {
  readonly size: number;
  /** `workers`, or `thread` once workers proved unable to start on this runtime. */
  readonly mode: "workers" | "thread";
  /** Decodes into `into`, or into the array `into(model)` returns once the model is known. */
  decode(body: Uint8Array, job: DecodeJob, into: FrameTarget): Promise<DecodedFrame>;
  /**
   * A `bytes`-long view on a body buffer a worker handed back, or a new one. Bodies travel to
   * the workers and back, so under load no body buffer is allocated or left for the collector.
   */
  allocateBody(bytes: number): Uint8Array;
  close(): Promise<void>;
}

/** Body buffers kept for reuse: enough for every worker plus a burst of reads in flight. */
const SPARE_BODIES = 16;
/** Larger buffers are not kept: a rare huge body must not pin its memory. */
const SPARE_BODY_MAX_BYTES = 4 * 2 ** 20;

const WORKER_URL = new URL("./_decode_worker.ts", import.meta.url);

/**
 * Starts `size` workers, each with its own scanner and a shared output slab of the largest model's size in
 * float32. A body is transferred (not copied) to an idle worker; its values come back through the
 * slab and are copied into the caller's `into` (100 KB for 25,000 features: microseconds).
 * Jobs wait in FIFO order when every worker is busy; the engine bounds them by its uploads in
 * flight (`QUEUE_MAX_SIZE`).
 * A crashed worker is replaced; a worker that cannot start at all switches the pool to decoding
 * on the calling thread rather than respawning in a loop.
 */
export function createDecodePool(options: {
  layouts: ModelLayouts;
  maxDecompressedBytes: number;
  size: number;
}): DecodePool {
  const { layouts, maxDecompressedBytes, size } = options;
  if (!Number.isInteger(size) || size < 1 || size > 64) {
    throw new RangeError(`'workers' must be an integer 1..64, got ${size}`);
  }
  const waiting: Pending[] = [];
  const spareBodies: ArrayBuffer[] = [];
  let closed = false;
  /** Set once workers proved unable to start: every body is then decoded on this thread. */
  let fallback: FrameDecoder | undefined;
  /** This thread's decoder: uncompressed binary frames always, every frame in fallback. */
  let local: FrameDecoder | undefined;
  const here = () => (local ??= createFrameDecoder(layouts, maxDecompressedBytes));
  let scratch: Float32Array | undefined;

  function start(): Slot {
    const shared = new SharedArrayBuffer(layouts.maxSize * 4);
    const setup: WorkerSetup = { layouts: layouts.spec, maxDecompressedBytes, output: shared };
    const worker = spawnWorker(WORKER_URL, setup);
    const slot: Slot = {
      worker,
      output: new Float32Array(shared),
      current: undefined,
      online: false,
    };
    worker.on("message", (reply: WorkerReply | "ready") => {
      if (reply === "ready") {
        slot.online = true;
        worker.unref();
        dispatch(slot);
      } else finish(slot, reply);
    });
    worker.on("error", (error) => fail(slot, error));
    worker.on("exit", (code) => {
      if (!closed) fail(slot, new Error(`decode worker exited with code ${code}`));
    });
    return slot;
  }

  const slots = Array.from({ length: size }, start);

  function dispatch(slot: Slot): void {
    // A body is only handed to a worker that is known to run: once transferred it is gone here.
    if (!slot.online || slot.current) return;
    const next = waiting.shift();
    if (!next) return;
    slot.current = next;
    // Only a busy (or starting) worker keeps the process alive; idle ones must not block exit.
    slot.worker.ref();
    const buffer = next.job.body.buffer;
    slot.worker.postMessage(next.job, buffer instanceof ArrayBuffer ? [buffer] : []);
  }

  /** Decodes on this thread, settling `pending`. */
  function decodeHere(pending: Pending): void {
    const decoder = here();
    try {
      const { into } = pending;
      if (typeof into !== "function") {
        pending.resolve(decoder.decode(pending.job.body, pending.job, into));
        return;
      }
      scratch ??= new Float32Array(layouts.maxSize);
      const frame = decoder.decode(pending.job.body, pending.job, scratch);
      into(frame.model).set(scratch.subarray(0, layouts.layouts[frame.model].size));
      pending.resolve(frame);
    } catch (error) {
      pending.reject(error as Error);
    }
  }

  /** Keeps a body buffer for reuse, unless it is large or enough are kept. */
  function keepSpare(buffer: ArrayBuffer): void {
    if (buffer.byteLength <= SPARE_BODY_MAX_BYTES && spareBodies.length < SPARE_BODIES) {
      spareBodies.push(buffer);
    }
  }

  function finish(slot: Slot, reply: WorkerReply): void {
    const pending = slot.current;
    slot.current = undefined;
    slot.worker.unref();
    if (pending) {
      if (reply.body) keepSpare(reply.body);
      if (reply.ok) {
        try {
          const values = slot.output.subarray(0, layouts.layouts[reply.model].size);
          const into = pending.into;
          (typeof into === "function" ? into(reply.model) : into).set(values);
          pending.resolve({
            model: reply.model,
            streamId: reply.streamId,
            timestamp: reply.timestamp,
            checksum: reply.checksum,
          });
        } catch (error) {
          // The target refused the frame (its model's queue is full): the caller's error.
          pending.reject(error as Error);
        }
      } else if ("crash" in reply)
        pending.reject(new Error(`decode worker failed: ${reply.crash}`));
      else pending.reject(new HttpError(reply.status, reply.code as ErrorCode, reply.message));
    }
    dispatch(slot);
  }

  function fail(slot: Slot, error: Error): void {
    const pending = slot.current;
    slot.current = undefined;
    slot.worker.removeAllListeners();
    slot.worker.unref();
    if (closed) {
      pending?.reject(error);
      return;
    }
    if (!slot.online) {
      fallback ??= here();
      for (const s of slots) s.worker.terminate();
      if (pending) decodeHere(pending);
      for (const job of waiting.splice(0)) decodeHere(job);
      return;
    }
    pending?.reject(error);
    const index = slots.indexOf(slot);
    if (index >= 0) {
      slots[index] = start();
      dispatch(slots[index]);
    }
  }

  return {
    size,
    get mode() {
      return fallback ? "thread" : "workers";
    },
    allocateBody(bytes) {
      for (let i = spareBodies.length - 1; i >= 0; i--) {
        if (spareBodies[i].byteLength >= bytes) {
          const [buffer] = spareBodies.splice(i, 1);
          return new Uint8Array(buffer, 0, bytes);
        }
      }
      // Rounded up, so the buffer fits the next, slightly larger body of the same stream too.
      const capacity =
        bytes <= SPARE_BODY_MAX_BYTES ? Math.ceil((bytes + 1) / 16384) * 16384 : bytes;
      return new Uint8Array(new ArrayBuffer(capacity), 0, bytes);
    },
    decode(body, job, into) {
      if (closed) return Promise.reject(new Error("decode pool is closed"));
      return new Promise((resolve, reject) => {
        const pending: Pending = {
          job: {
            body,
            encoding: job.encoding,
            binary: job.binary,
            model: job.model,
            streamId: job.streamId,
            timestamped: job.timestamped,
          },
          into,
          resolve,
          reject,
        };
        if (fallback) return decodeHere(pending);
        if (job.binary && job.encoding === "identity") {
          // An uncompressed binary frame is a copy and a finiteness check (0.1 ms or less for
          // 25,000 values): no dearer here than the request thread's share of a round trip to a
          // worker (README.md, "Threads").
          decodeHere(pending);
          if (body.buffer instanceof ArrayBuffer) keepSpare(body.buffer);
          return;
        }
        waiting.push(pending);
        const idle = slots.find((s) => s.online && s.current === undefined);
        if (idle) dispatch(idle);
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const pending of waiting.splice(0)) pending.reject(new Error("decode pool closed"));
      await Promise.all(slots.map((s) => s.worker.terminate()));
      for (const slot of slots) slot.current?.reject(new Error("decode pool closed"));
    },
  };
}
