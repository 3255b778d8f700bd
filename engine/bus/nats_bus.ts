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

/**
 * The frame duplicate window: a retry within it (to any replica) is dropped by the server. A
 * stream keeping frames for less (`NATS_STREAM_MAX_AGE_S` < 120) gets its max age instead: the
 * server refuses a window longer than the max age.
 */
export const DUPLICATE_WINDOW_MS = 120_000;

/**
 * The server's refusals of a stream's limits, each with the engine setting behind it: a start-up
 * that fails on one says what to change, not only what NATS said.
 */
const LIMIT_ERRORS: {
  pattern: RegExp;
  setting: "NATS_STREAM_MAX_BYTES" | "NATS_STREAM_MAX_AGE_S";
}[] = [
  // "insufficient storage resources available", "... max bytes exceeds account limit ..."
  { pattern: /resources|max(imum)? (stream )?bytes/i, setting: "NATS_STREAM_MAX_BYTES" },
  // "duplicates window can not be larger then max age"
  { pattern: /max age/i, setting: "NATS_STREAM_MAX_AGE_S" },
];

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
    duplicate_window: nanos(Math.min(DUPLICATE_WINDOW_MS, options.maxAgeS * 1000)),
  };
  try {
    await jsm.streams.info(stream);
    await jsm.streams.update(stream, config);
  } catch (error) {
    if ((error as Error).name !== "StreamNotFoundError") throw limitError(error, options);
    await jsm.streams.add(config).catch(async (addError) => {
      // Another process created it in between: fine if it is there now.
      await jsm.streams.info(stream).catch(() => {
        throw limitError(addError, options);
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

/**
 * `error`, its message naming the engine settings behind the stream's limits where the server
 * refused them: "insufficient storage resources available" says nothing of
 * `NATS_STREAM_MAX_BYTES` exceeding the server's JetStream storage. The error itself is kept (a
 * `JetStreamApiError` with its code), so a start-up still stops at once on it (`connectWithRetry`).
 */
function limitError(error: unknown, options: NatsBusOptions): unknown {
  if (!(error instanceof Error)) return error;
  const values = {
    NATS_STREAM_MAX_BYTES: options.maxBytes,
    NATS_STREAM_MAX_AGE_S: options.maxAgeS,
  };
  const named = LIMIT_ERRORS.filter(({ pattern }) => pattern.test(error.message)).map(
    ({ setting }) => `${setting}=${values[setting]}`,
  );
  if (named.length === 0) return error;
  error.message =
    `NATS refused stream ${options.stream} with ${named.join(", ")}: ${error.message}; ` +
    "lower the setting or raise the server's limits (JetStream max_file_store, account limits)";
  return error;
}
