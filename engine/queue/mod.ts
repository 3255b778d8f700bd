// The ingest queue: preallocated frame slabs and the FIFO of committed frames.
export { type FrameMeta, FrameQueue, type FrameQueueOptions } from "./frame_queue.ts";
export { RingBuffer } from "./ring_buffer.ts";
