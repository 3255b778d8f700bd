// A model's last retraining runs under scale-out (scheduled or asked for), kept in the shared registry's KV so every process sees it and shows it.
import type { KV } from "@nats-io/kv";
import type { RetrainRun, RetrainSchedule } from "../../contracts/models_api.ts";
import { isWrongSequence } from "../infer/nats_registry.ts";
import type { LeaseValue } from "./retrain_lease.ts";

/** `retrain.<name>` in the registry's pointer bucket: the last run, and the last that promoted. */
export interface RetrainRecord {
  last: RetrainRun;
  last_promoted?: RetrainRun;
}

const PREFIX = "retrain.";
const recordKey = (name: string) => `${PREFIX}${name}`;

/** The record of `name` with its revision; undefined when there is none (or it does not parse). */
async function readEntry(
  kv: KV,
  name: string,
): Promise<{ record: RetrainRecord; revision: number } | undefined> {
  const entry = await kv.get(recordKey(name));
  if (entry?.operation !== "PUT") return undefined;
  try {
    const record = entry.json<RetrainRecord>();
    return typeof record?.last?.started_at === "string"
      ? { record, revision: entry.revision }
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A run left `running` that nobody runs any more, as it is shown and recorded from then on:
 * failed, its end not seen (its worker was killed, restarted or cut off from NATS before it
 * recorded one), as the single engine shows a run its journal holds as running at start.
 */
export function unseenEnd(run: RetrainRun): RetrainRun {
  return {
    ...run,
    outcome: "failed",
    error: `worker ${run.worker ?? "(unknown)"} stopped during this run (killed, restarted or cut off from NATS), so its end was not seen; the model's activations say whether it promoted a version`,
  };
}

/**
 * The record of `name`, or undefined when no worker retrained it yet (or it does not parse).
 * With `leases` (the retraining leases' bucket, `<NATS_STREAM>_retrain`), a last run still
 * `running` whose worker does not hold the model's lease is shown as {@link unseenEnd}: a
 * holder takes the lease before it records a run as running and releases it only after recording
 * its end, so a running record that stays the same across a look at the lease that finds it not
 * held by its worker is one whose worker stopped. A lease bucket that does not answer shows the
 * record as it is.
 */
export async function readRetrainRecord(
  kv: KV,
  name: string,
  leases?: KV,
): Promise<RetrainRecord | undefined> {
  const read = await readEntry(kv, name);
  if (!read || !leases || read.record.last.outcome !== "running") return read?.record;
  let holder: string | undefined;
  try {
    const lease = await leases.get(`lease.${name}`);
    if (lease?.operation === "PUT") holder = lease.json<LeaseValue>().worker;
  } catch {
    return read.record;
  }
  if (holder === read.record.last.worker) return read.record;
  const again = await readEntry(kv, name);
  // Written meanwhile (the run ended, or one started): shown as it is now.
  if (again?.revision !== read.revision) return again?.record;
  return { ...read.record, last: unseenEnd(read.record.last) };
}

/**
 * Records a last run of `name` still `running` as {@link unseenEnd}, when nobody can be running it:
 * called by the holder of the model's lease (before it runs), or, with `worker`, for that
 * worker's own runs at its start. Revision-checked: a record written meanwhile stays. Resolves
 * with the record as it stands, and whether this call settled it.
 */
export async function settleUnseenRun(
  kv: KV,
  name: string,
  worker?: string,
): Promise<{ record: RetrainRecord | undefined; settled: boolean }> {
  const read = await readEntry(kv, name);
  const last = read?.record.last;
  if (!read || last?.outcome !== "running" || (worker !== undefined && last.worker !== worker)) {
    return { record: read?.record, settled: false };
  }
  const record: RetrainRecord = { ...read.record, last: unseenEnd(last) };
  try {
    await kv.update(recordKey(name), JSON.stringify(record), read.revision);
  } catch (error) {
    if (!isWrongSequence(error)) throw error;
    return { record: (await readEntry(kv, name))?.record, settled: false };
  }
  return { record, settled: true };
}

/** The models with a retraining record (`retrain.<name>`). */
export async function recordedModels(kv: KV): Promise<string[]> {
  const names: string[] = [];
  for await (const key of await kv.keys(`${PREFIX}*`)) names.push(key.slice(PREFIX.length));
  return names;
}

/** Replaces the record of `name` (only the lease holder writes it). */
export async function writeRetrainRecord(
  kv: KV,
  name: string,
  record: RetrainRecord,
): Promise<void> {
  await kv.put(recordKey(name), JSON.stringify(record));
}

/**
 * What `GET /models` shows of a model's retraining under scale-out, from the shared record:
 * `next_at` is the earliest a worker will start the next run (the last run's end plus
 * `RETRAIN_EVERY_H`; a worker's round on or after it runs it), null while one runs, before any, and
 * with no schedule (`everyH` 0: runs only when asked for).
 */
export function sharedSchedule(everyH: number, record: RetrainRecord | undefined): RetrainSchedule {
  const finished = record?.last.finished_at;
  return {
    every_h: everyH,
    next_at:
      finished && everyH > 0
        ? new Date(Date.parse(finished) + everyH * 3_600_000).toISOString()
        : null,
    ...(record ? { last: record.last } : {}),
    ...(record?.last_promoted ? { last_promoted: record.last_promoted } : {}),
  };
}
