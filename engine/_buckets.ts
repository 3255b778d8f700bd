// Creates or binds to the JetStream KV and object buckets that processes starting together share.
import { jetstreamManager } from "@nats-io/jetstream";
import { type KV, Kvm, type KvOptions } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { type ObjectStore, type ObjectStoreOptions, Objm } from "@nats-io/obj";

/** The first probe's wait for a direct get's answer (doubled on each try up to the request timeout). */
const FIRST_PROBE_MS = 250;
/** How long probing goes on before the bucket is given up as never made. */
const SETTLE_MS = 30_000;
/** The client's own request timeout, when the caller sets none. */
const REQUEST_TIMEOUT_MS = 5000;

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
 * a get through the stream's API crashes the server (a nil store in `jsMsgGetRequest`). Each try
 * waits twice as long as the last, up to `timeoutMs`, so a slow link gets its answer too; a
 * stream that allows no direct get (made by another tool) never answers one and is not waited for.
 */
async function settled(
  nc: NatsConnection,
  stream: string,
  subject: string,
  timeoutMs: number,
  allowsDirect: () => Promise<boolean>,
): Promise<void> {
  const until = Date.now() + SETTLE_MS;
  let wait = Math.min(FIRST_PROBE_MS, timeoutMs);
  for (let attempt = 1; ; attempt++) {
    const jsm = await jetstreamManager(nc, { checkAPI: false, timeout: wait });
    try {
      await jsm.direct.getMessage(stream, { last_by_subj: subject });
      return;
    } catch (error) {
      if (nc.isClosed()) throw error;
      if ((error as Error).name !== "TimeoutError") return; // answered, with a refusal
    }
    if (attempt === 1 && !(await allowsDirect())) return;
    if (Date.now() + wait > until) {
      throw new Error(`stream ${stream} answered no direct get within ${SETTLE_MS} ms`);
    }
    wait = Math.min(wait * 2, timeoutMs);
  }
}

/** `new Kvm(nc).create(name, options)` for processes that start together: made once, read once made. */
export async function kvBucket(
  nc: NatsConnection,
  name: string,
  options: Partial<KvOptions> = {},
): Promise<KV> {
  const kv = await createdOrBound(() => new Kvm(nc).create(name, options));
  const allowsDirect = async () => (await kv.status()).streamInfo.config.allow_direct === true;
  const timeoutMs = options.timeout ?? REQUEST_TIMEOUT_MS;
  await settled(nc, `KV_${name}`, `$KV.${name}.settled`, timeoutMs, allowsDirect);
  return kv;
}

/** `new Objm(nc).create(name, options)` for processes that start together: made once, read once made. */
export async function objectBucket(
  nc: NatsConnection,
  name: string,
  options: Partial<ObjectStoreOptions> = {},
): Promise<ObjectStore> {
  const objects = await createdOrBound(() => new Objm(nc).create(name, options));
  const allowsDirect = async () => (await objects.status()).streamInfo.config.allow_direct === true;
  await settled(nc, `OBJ_${name}`, `$O.${name}.M.settled`, REQUEST_TIMEOUT_MS, allowsDirect);
  return objects;
}
