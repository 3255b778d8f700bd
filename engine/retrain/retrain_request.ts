// A retraining asked for under scale-out: the ingest replica writes `retrain_request.<model>` into the registry's pointer bucket; the worker that takes the model's lease takes the request and runs it.
import type { KV } from "@nats-io/kv";
import * as v from "valibot";
import { HttpError } from "../../contracts/error.ts";
import {
  type RetrainAsked,
  type RetrainRun,
  retrainAskedSchema,
} from "../../contracts/models_api.ts";
import { delay } from "../_delay.ts";
import { isWrongSequence } from "../infer/nats_registry.ts";
import type { LeaseValue, RetrainLeases } from "./retrain_lease.ts";
import { readRetrainRecord } from "./retrain_record.ts";

const PREFIX = "retrain_request.";
const requestKey = (model: string) => `${PREFIX}${model}`;
/** How long a replica waits for a worker to take its request before withdrawing it. */
export const TAKE_TIMEOUT_MS = 10_000;
/** How often a worker looks for requests while it runs none. */
export const REQUEST_POLL_MS = 1000;

/** The request under `key`, or undefined when there is none (or it does not parse). */
async function readRequest(kv: KV, key: string) {
  const entry = await kv.get(key);
  if (entry?.operation !== "PUT") return undefined;
  try {
    const parsed = v.safeParse(retrainAskedSchema, entry.json());
    return parsed.success ? { asked: parsed.output, revision: entry.revision } : undefined;
  } catch {
    return undefined;
  }
}

/** Of `models`, those with a run asked for, and who asked (a worker's look-out, every {@link REQUEST_POLL_MS}). */
export async function pendingRetrainRequests(
  kv: KV,
  models: string[],
): Promise<{ model: string; asked: RetrainAsked }[]> {
  const found: { model: string; asked: RetrainAsked }[] = [];
  for (const model of models) {
    const request = await readRequest(kv, requestKey(model));
    if (request) found.push({ model, asked: request.asked });
  }
  return found;
}

/**
 * Takes `model`'s request: read again and deleted at the revision read, so of the workers that
 * saw it one takes it, and a worker that saw a request already run finds none. Called by the
 * holder of the model's retraining lease; undefined when there is nothing (left) to take.
 */
export async function takeRetrainRequest(kv: KV, model: string): Promise<RetrainAsked | undefined> {
  const request = await readRequest(kv, requestKey(model));
  if (!request) return undefined;
  try {
    await kv.delete(requestKey(model), { previousSeq: request.revision });
  } catch (error) {
    if (isWrongSequence(error)) return undefined;
    throw error;
  }
  return request.asked;
}

export interface AskSharedRetrainOptions {
  /** The registry's pointer bucket (`<NATS_STREAM>_model_pointer`): requests and run records. */
  kv: KV;
  /** The retraining leases (`<NATS_STREAM>_retrain`): who retrains now. */
  leases: RetrainLeases;
  model: string;
  asked: RetrainAsked;
  /** How long to wait for a worker to take the request (default {@link TAKE_TIMEOUT_MS}). */
  timeoutMs?: number;
  now?: () => number;
}

/**
 * An ingest replica's `POST /models/{name}/retrain`. Refused with `409 retrain_running` while any
 * model's retraining lease is held (a run in progress, on any worker) or another request waits
 * for a worker; otherwise writes `retrain_request.<model>` (created only when absent: of two
 * replicas asking at once one wins) and waits until a worker has taken it and recorded the run in
 * `retrain.<model>`, which it returns (outcome `running`, naming the worker). When no worker takes
 * it within `timeoutMs` (none running, none serving the model, none with the history on) the
 * request is withdrawn and the answer is `409 retrain_unavailable`. A request left behind by a
 * replica that died while waiting is older than two timeouts and replaced.
 */
export async function askSharedRetrain(o: AskSharedRetrainOptions): Promise<RetrainRun> {
  const { kv, model, asked } = o;
  const timeoutMs = o.timeoutMs ?? TAKE_TIMEOUT_MS;
  const now = o.now ?? Date.now;
  for await (const key of await o.leases.kv.keys("lease.*")) {
    const held = await o.leases.kv.get(key).catch(() => null);
    if (held?.operation !== "PUT") continue;
    let worker = "a worker";
    try {
      worker = `worker ${held.json<LeaseValue>().worker}`;
    } catch {
      // still held
    }
    throw new HttpError(
      409,
      "retrain_running",
      `${worker} is retraining ${key.slice("lease.".length)}; one retraining runs at a time`,
    );
  }
  for await (const key of await kv.keys(`${PREFIX}*`)) {
    const waiting = await readRequest(kv, key);
    if (!waiting) continue;
    if (now() - Date.parse(waiting.asked.at) < 2 * timeoutMs) {
      throw new HttpError(
        409,
        "retrain_running",
        `a retraining of ${key.slice(PREFIX.length)} was asked for at ${waiting.asked.at} and waits for a worker`,
      );
    }
    // Its replica died waiting: nobody will withdraw it.
    await kv.delete(key, { previousSeq: waiting.revision }).catch(() => {});
  }
  let revision: number;
  try {
    revision = await kv.create(requestKey(model), JSON.stringify(asked));
  } catch (error) {
    if (!isWrongSequence(error)) throw error;
    throw new HttpError(409, "retrain_running", `a retraining of ${model} was asked for just now`);
  }
  const ours = (run: RetrainRun | undefined) =>
    run?.requested?.at === asked.at && run.requested.by === asked.by ? run : undefined;
  const deadline = AbortSignal.timeout(timeoutMs);
  do {
    const run = ours((await readRetrainRecord(kv, model))?.last);
    if (run) return run;
  } while (await delay(100, deadline));
  try {
    await kv.delete(requestKey(model), { previousSeq: revision });
  } catch (error) {
    if (!isWrongSequence(error)) throw error;
    // Taken at the last moment: the run is being recorded.
    const late = AbortSignal.timeout(timeoutMs);
    do {
      const run = ours((await readRetrainRecord(kv, model))?.last);
      if (run) return run;
    } while (await delay(100, late));
    return {
      started_at: asked.at,
      finished_at: null,
      outcome: "running",
      reasons: [],
      requested: asked,
    };
  }
  throw new HttpError(
    409,
    "retrain_unavailable",
    `no worker took the request to retrain ${model} within ${timeoutMs / 1000} s (withdrawn): ` +
      "are workers running, serving the model, with HISTORY_MAX_BYTES above 0?",
  );
}
