// The NATS JetStream side of the frame bus: connection, the partitioned frame stream and the lease bucket.
import {
  DiscardPolicy,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
} from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { type NatsConnection, nanos } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { kvBucket } from "../_buckets.ts";
import { partitionSubject } from "./partition_of.ts";

export interface NatsBusOptions {
  /** `NATS_URL`: one server or a comma-separated list. */
  url: string;
  /** `NATS_STREAM`: the stream name; subjects are `<stream>.p.<n>`, the bucket `<stream>_leases`. */
  stream: string;
  /** `NATS_PARTITIONS`: fixed for the life of the stream (checked at start). */
  partitions: number;
  maxBytes: number;
  maxAgeS: number;
  /** Client name shown by the server (`engine-ingest-<pid>`). */
  name: string;
  /** How long a connect or set-up request may take. */
  timeoutMs?: number;
}

export interface NatsBus {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  /** Partition leases and committed positions (`p.<n>`), worker heartbeats (`w.<id>`). */
  kv: KV;
  stream: string;
  partitions: number;
  subject(partition: number): string;
  /**
   * Creates the frame stream and the lease bucket again where they are missing (a server
   * restarted without its store), as at start; idempotent. See `BusRepair`.
   */
  repair(): Promise<void>;
  close(): Promise<void>;
}

/** The frame duplicate window: a retry within it (to any replica) is dropped by the server. */
export const DUPLICATE_WINDOW_MS = 120_000;

/** Raised when the stream was set up with another partition count than this process has. */
export class PartitionMismatchError extends Error {
  override name = "PartitionMismatchError";
}

/**
 * Connects (reconnecting for ever afterwards), creates the frame stream and the lease bucket if
 * they do not exist, and checks that `partitions` matches what the stream was created with:
 * the hash of a stream id must land on the same partition in every process.
 *
 * @example const bus = await openNatsBus({ url, stream: "FRAMES", partitions: 32, ... });
 */
export async function openNatsBus(options: NatsBusOptions): Promise<NatsBus> {
  const { stream, partitions } = options;
  const timeout = options.timeoutMs ?? 5000;
  const nc = await connect({
    servers: options.url.split(","),
    name: options.name,
    timeout,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
  });
  try {
    const jsm = await jetstreamManager(nc, { timeout });
    const kv = await setUp(nc, jsm, options, timeout);
    const js = jetstream(nc, { timeout });
    return {
      nc,
      js,
      jsm,
      kv,
      stream,
      partitions,
      subject: (p) => partitionSubject(stream, p),
      repair: async () => {
        await setUp(nc, jsm, options, timeout);
      },
      async close() {
        if (!nc.isClosed()) await nc.drain().catch(() => nc.close());
      },
    };
  } catch (error) {
    await nc.close();
    throw error;
  }
}

/**
 * Creates (or updates) the frame stream and creates the lease bucket with its `partitions` key
 * where they do not exist; throws {@link PartitionMismatchError} when the stream was set up with
 * another partition count. Run at start, and again when the server lost them.
 */
async function setUp(
  nc: NatsConnection,
  jsm: JetStreamManager,
  options: NatsBusOptions,
  timeout: number,
): Promise<KV> {
  const { stream, partitions } = options;
  const config = {
    name: stream,
    subjects: [`${stream}.p.*`],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    // A full stream refuses new frames (ingest answers 503) rather than dropping unscored ones;
    // the workers purge what they scored (`ScoredFrames`), so only those and the replay frames count.
    discard: DiscardPolicy.New,
    max_bytes: options.maxBytes,
    max_age: nanos(options.maxAgeS * 1000),
    duplicate_window: nanos(DUPLICATE_WINDOW_MS),
  };
  try {
    await jsm.streams.info(stream);
    await jsm.streams.update(stream, config);
  } catch (error) {
    if ((error as Error).name !== "StreamNotFoundError") throw error;
    await jsm.streams.add(config).catch(async (addError) => {
      // Another process created it in between: fine if it is there now.
      await jsm.streams.info(stream).catch(() => {
        throw addError;
      });
    });
  }
  const kv = await kvBucket(nc, `${stream}_leases`, { history: 1, timeout });
  const created = await kv.create("partitions", String(partitions)).catch(() => 0);
  if (!created) {
    const held = Number((await kv.get("partitions"))?.string());
    if (held !== partitions) {
      throw new PartitionMismatchError(
        `'NATS_PARTITIONS' is ${partitions} but stream ${stream} was set up with ${held}; ` +
          "a partition count is fixed for the life of a stream",
      );
    }
  }
  return kv;
}
