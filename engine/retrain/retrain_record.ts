// A model's last retraining runs under scale-out (scheduled or asked for), kept in the shared registry's KV so every process sees it and shows it.
import type { KV } from "@nats-io/kv";
import type { RetrainRun, RetrainSchedule } from "../../contracts/models_api.ts";

/** `retrain.<name>` in the registry's pointer bucket: the last run, and the last that promoted. */
export interface RetrainRecord {
  last: RetrainRun;
  last_promoted?: RetrainRun;
}

const recordKey = (name: string) => `retrain.${name}`;

/** The record of `name`, or undefined when no worker retrained it yet (or it does not parse). */
export async function readRetrainRecord(kv: KV, name: string): Promise<RetrainRecord | undefined> {
  const entry = await kv.get(recordKey(name));
  if (entry?.operation !== "PUT") return undefined;
  try {
    const record = entry.json<RetrainRecord>();
    return typeof record?.last?.started_at === "string" ? record : undefined;
  } catch {
    return undefined;
  }
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
