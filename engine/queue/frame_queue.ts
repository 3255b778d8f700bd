// The ingest queue: preallocated frame slabs in one SharedArrayBuffer, a free list, and a FIFO.
import type { SpanContext } from "@opentelemetry/api";
import { RingBuffer } from "./ring_buffer.ts";

/** What travels with a committed frame besides its values. */
export interface FrameMeta {
  streamId: string;
  /** Epoch milliseconds (explicit, or reception time made strictly increasing per stream). */
  timestamp: number;
  /** `performance.now()` at reception, for reception → inference latency. */
  receivedAt: number;
  /** The enqueue span, so the batch span can link to every frame in it. */
  span: SpanContext | undefined;
}

export interface FrameQueueOptions {
  /** Frames held at most (`QUEUE_MAX_SIZE`): reserved by decoded frames being admitted plus committed. */
  capacity: number;
  /** Values per frame (the model's feature count). */
  frameSize: number;
}

// A frame pool larger than this is almost certainly a configuration mistake, not a plan.
const MAX_POOL_BYTES = 16 * 1024 ** 3;

/**
 * Frames live in `capacity` Float32Array slabs carved from one SharedArrayBuffer, so an ingest
 * worker thread can decode straight into a slab. A request reserves a slab before reading its
 * body (so a slow upload never blocks others and never holds the FIFO), then either commits it
 * (it joins the FIFO) or releases it (no trace left). The batcher takes committed slots in order.
 *
 * Complexity: every operation is O(1) and allocation-free except `commit`, which stores the
 * caller's metadata object fields.
 */
export class FrameQueue {
  readonly #slabs: Float32Array[];
  readonly #free: Uint32Array; // stack of free slot ids
  #freeCount: number;
  readonly #committed: RingBuffer;
  readonly #streamIds: string[];
  readonly #timestamps: Float64Array;
  readonly #receivedAt: Float64Array;
  readonly #spans: (SpanContext | undefined)[];
  #wake: (() => void) | undefined;

  constructor(options: FrameQueueOptions) {
    const { capacity, frameSize } = options;
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 65536) {
      throw new RangeError(`'capacity' must be an integer 1..65536, got ${capacity}`);
    }
    if (!Number.isInteger(frameSize) || frameSize < 1) {
      throw new RangeError(`'frameSize' must be a positive integer, got ${frameSize}`);
    }
    const bytes = capacity * frameSize * Float32Array.BYTES_PER_ELEMENT;
    if (bytes > MAX_POOL_BYTES) {
      throw new RangeError(`'capacity' x 'frameSize' needs ${bytes} bytes, over ${MAX_POOL_BYTES}`);
    }
    const memory = new SharedArrayBuffer(bytes);
    this.#slabs = Array.from({ length: capacity }, (_, i) => {
      return new Float32Array(memory, i * frameSize * 4, frameSize);
    });
    this.#free = new Uint32Array(capacity);
    for (let i = 0; i < capacity; i++) this.#free[i] = capacity - 1 - i;
    this.#freeCount = capacity;
    this.#committed = new RingBuffer(capacity);
    this.#streamIds = new Array<string>(capacity).fill("");
    this.#timestamps = new Float64Array(capacity);
    this.#receivedAt = new Float64Array(capacity);
    this.#spans = new Array<SpanContext | undefined>(capacity).fill(undefined);
  }

  get capacity(): number {
    return this.#slabs.length;
  }

  /** Committed frames waiting to be scored. */
  get depth(): number {
    return this.#committed.length;
  }

  /** Slots in use: committed plus reserved by decoded frames being admitted. */
  get used(): number {
    return this.#slabs.length - this.#freeCount;
  }

  /** Reserves a free slab; returns its slot id, or -1 when every slab is in use. */
  reserve(): number {
    if (this.#freeCount === 0) return -1;
    return this.#free[--this.#freeCount];
  }

  /** The slab of a reserved or committed slot. */
  slab(slot: number): Float32Array {
    return this.#slabs[slot];
  }

  /** Gives a slot back: a reserved one whose frame was rejected, or a taken one once copied. */
  release(slot: number): void {
    this.#spans[slot] = undefined;
    this.#free[this.#freeCount++] = slot;
  }

  /** Appends a reserved slot, now holding a valid frame, to the FIFO and wakes the batcher. */
  commit(slot: number, meta: FrameMeta): void {
    this.#streamIds[slot] = meta.streamId;
    this.#timestamps[slot] = meta.timestamp;
    this.#receivedAt[slot] = meta.receivedAt;
    this.#spans[slot] = meta.span;
    // Cannot fail: the FIFO holds `capacity` ids and only reserved slots are committed.
    this.#committed.push(slot);
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** Removes the oldest committed slot and returns its id, or -1 when none. */
  take(): number {
    return this.#committed.shift();
  }

  streamId(slot: number): string {
    return this.#streamIds[slot];
  }

  timestamp(slot: number): number {
    return this.#timestamps[slot];
  }

  receivedAt(slot: number): number {
    return this.#receivedAt[slot];
  }

  span(slot: number): SpanContext | undefined {
    return this.#spans[slot];
  }

  /** Wakes a waiting consumer without a frame (it has something else to look at). */
  notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** Resolves once at least one frame is committed (at once if one is) or `signal` aborts. */
  waitForFrames(signal?: AbortSignal): Promise<void> {
    if (this.#committed.length > 0 || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        signal?.removeEventListener("abort", done);
        if (this.#wake === done) this.#wake = undefined;
        resolve();
      };
      // One consumer (the batcher) waits at a time; a second waiter replaces nothing silently.
      if (this.#wake) throw new Error("FrameQueue supports one waiting consumer");
      this.#wake = done;
      signal?.addEventListener("abort", done, { once: true });
    });
  }
}
