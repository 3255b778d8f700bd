// The incident state store port on a JetStream KV bucket, per partition, so a new owner continues open incidents.
import type { KV } from "@nats-io/kv";
import type {
  IncidentStateChange,
  IncidentStateStore,
  StoredIncidentState,
} from "../alert/incident_state_store.ts";

// KV keys allow [-/_=.A-Za-z0-9] and '.' separates tokens; stream ids may hold '.' and ':'.
const encode = (streamId: string) => streamId.replace(/\./g, "=2E").replace(/:/g, "=3A");
const decode = (token: string) => token.replace(/=2E/g, ".").replace(/=3A/g, ":");

/**
 * Keeps the incident state of partition `partition`'s streams under `p<partition>.<stream>` in
 * `kv` (the bucket `<NATS_STREAM>_incidents`), or, for a model `MODEL_ROUTES` names, under
 * `p<partition>.<model>.<stream>` (one token more: the default model's keys never match it). A
 * worker that takes the partition over loads them and continues each stream's open incident
 * where the previous owner left it. A write is stored (and replicated, on a clustered bucket)
 * when the server acknowledges it, so `durable` needs nothing more.
 */
export class KvIncidentStateStore implements IncidentStateStore {
  readonly #kv: KV;
  readonly #prefix: string;

  constructor(kv: KV, partition: number, model?: string) {
    this.#kv = kv;
    this.#prefix = model ? `p${partition}.${encode(model)}.` : `p${partition}.`;
  }

  async load(): Promise<Map<string, StoredIncidentState>> {
    const states = new Map<string, StoredIncidentState>();
    const keys: string[] = [];
    for await (const key of await this.#kv.keys(`${this.#prefix}*`)) keys.push(key);
    for (const key of keys) {
      const entry = await this.#kv.get(key);
      if (entry?.operation !== "PUT") continue;
      states.set(decode(key.slice(this.#prefix.length)), entry.json<StoredIncidentState>());
    }
    return states;
  }

  async save(changes: readonly IncidentStateChange[], _durable: boolean): Promise<void> {
    await Promise.all(
      changes.map(({ streamId, state }) => {
        const key = `${this.#prefix}${encode(streamId)}`;
        return state === undefined
          ? this.#kv.purge(key)
          : this.#kv.put(key, JSON.stringify(state)).then(() => {});
      }),
    );
  }
}
