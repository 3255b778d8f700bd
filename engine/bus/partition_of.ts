// The partition model: a stable hash of stream_id picks the partition, the partition picks the subject.

const encoder = new TextEncoder();

/**
 * FNV-1a (32 bit) of the UTF-8 stream id, modulo `partitions`. Stable across processes, runtimes
 * and releases: changing it would move streams between partitions and break their order.
 *
 * @example partitionOf("line-3", 32) // always the same number in 0..31
 */
export function partitionOf(streamId: string, partitions: number): number {
  let hash = 0x811c9dc5;
  for (const byte of encoder.encode(streamId)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % partitions;
}

/** The JetStream subject of partition `p` of stream `stream` (`FRAMES.p.7`). */
export function partitionSubject(stream: string, p: number): string {
  return `${stream}.p.${p}`;
}

/**
 * The JetStream message id of a frame: stream + timestamp. A retry of the same frame, to any
 * ingest replica, carries the same id, so the server's duplicate window drops it.
 */
export function frameMessageId(streamId: string, timestamp: number): string {
  return `${streamId}@${timestamp}`;
}
