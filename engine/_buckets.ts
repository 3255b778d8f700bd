// Creates or binds to the JetStream KV and object buckets that processes starting together share.
import { jetstreamManager } from "@nats-io/jetstream";
import { type KV, Kvm, type KvOptions } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { type ObjectStore, type ObjectStoreOptions, Objm } from "@nats-io/obj";

/** How long one probe of a stream's direct get waits, and how long probing goes on. */
const PROBE_MS = 250;
const SETTLE_MS = 30_000;

/**
 * Runs `create` again once when the server refused it: the client asks whether the stream exists
 * and adds it if not, so a process that asked while another was adding it is refused ("subjects
 * overlap", or another configuration such as a max age); asked again, it binds to what is there.
 */
async function createdOrBound<T>(create: () => Promise<T>): Promise<T> {
  return create().catch((error: Error) => {
    if (error.name !== "JetStreamApiError") throw error;
    return create();
  });
}

/**
 * Resolves once stream `stream` answers a direct get for `subject`, which nats-server 2.9 does
 * only once the stream is fully made. A process that found the stream while another was still
 * making it could otherwise read too soon: a direct get then goes unanswered (a 5 s timeout) and
 * a get through the stream's API crashes the server (a nil store in `jsMsgGetRequest`).
 */
async function settled(nc: NatsConnection, stream: string, subject: string): Promise<void> {
  const jsm = await jetstreamManager(nc, { timeout: PROBE_MS });
  const until = Date.now() + SETTLE_MS;
  for (;;) {
    try {
      await jsm.direct.getMessage(stream, { last_by_subj: subject });
      return;
    } catch (error) {
      if ((error as Error).name !== "TimeoutError") return; // answered, with a refusal
      if (Date.now() > until) throw error;
    }
  }
}

/** `new Kvm(nc).create(name, options)` for processes that start together: made once, read once made. */
export async function kvBucket(
  nc: NatsConnection,
  name: string,
  options: Partial<KvOptions> = {},
): Promise<KV> {
  const kv = await createdOrBound(() => new Kvm(nc).create(name, options));
  await settled(nc, `KV_${name}`, `$KV.${name}.settled`);
  return kv;
}

/** `new Objm(nc).create(name, options)` for processes that start together: made once, read once made. */
export async function objectBucket(
  nc: NatsConnection,
  name: string,
  options: Partial<ObjectStoreOptions> = {},
): Promise<ObjectStore> {
  const objects = await createdOrBound(() => new Objm(nc).create(name, options));
  await settled(nc, `OBJ_${name}`, `$O.${name}.M.settled`);
  return objects;
}
