// The incident state store port on a JetStream KV bucket, per partition, so a new owner continues open incidents.
import type { KV } from "@nats-io/kv";
import { MODEL_NAME_PATTERN } from "../../contracts/models_api.ts";
import type {
  IncidentStateChange,
  IncidentStateStore,
  StoredIncidentState,
} from "../alert/incident_state_store.ts";

// KV keys allow [-/_=.A-Za-z0-9] and '.' separates tokens; stream ids may hold '.' and ':'.
const encode = (streamId: string) => streamId.replace(/\./g, "=2E").replace(/:/g, "=3A");
const decode = (token: string) => token.replace(/=2E/g, ".").replace(/=3A/g, ":");

/**
 * Keeps model `model`'s incident state of partition `partition`'s streams under
 * `p<partition>.<model>.<stream>` in `kv` (the bucket `<NATS_STREAM>_incidents`), whether the model
 * is the default one or routed, so a model that stops or starts being the default keeps its own
 * open incidents. A worker that takes the partition over loads them and continues each stream's
 * open incident where the previous owner left it. A write is stored (and replicated, on a
 * clustered bucket) when the server acknowledges it, so `durable` needs nothing more.
 */
export class KvIncidentStateStore implements IncidentStateStore {
  readonly #kv: KV;
  readonly #prefix: string;

  constructor(kv: KV, partition: number, model: string) {
    this.#kv = kv;
    this.#prefix = `p${partition}.${encode(model)}.`;
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

/**
 * Moves the states an earlier release kept under `p<partition>.<stream>` (the default model's,
 * whichever model was the default then) to the key of the model each was saved under
 * (`defaultModel` for one saved before states named their model). Where that key already holds a
 * state (the model was routed in between), the newer stays. The owner of the partition runs it
 * when it takes the partition over, before any model loads; each key is written before the old one
 * is purged, so a crash part-way leaves the rest for the next owner. Returns how many moved.
 */
export async function moveLegacyKvStates(
  kv: KV,
  partition: number,
  defaultModel: string,
): Promise<number> {
  const keys: string[] = [];
  // One token after the partition's: the default model's keys of an earlier release.
  for await (const key of await kv.keys(`p${partition}.*`)) keys.push(key);
  let moved = 0;
  for (const key of keys) {
    const entry = await kv.get(key);
    if (entry?.operation !== "PUT") continue;
    let model = defaultModel;
    try {
      const name = entry.json<StoredIncidentState>()?.model?.name;
      if (typeof name === "string" && MODEL_NAME_PATTERN.test(name)) model = name;
    } catch {
      // Unreadable: moved as it is; the default model's load meets it.
    }
    const to = `p${partition}.${encode(model)}.${key.slice(`p${partition}.`.length)}`;
    const there = await kv.get(to);
    if (there?.operation !== "PUT" || there.created.getTime() < entry.created.getTime()) {
      await kv.put(to, entry.value);
      moved++;
    }
    await kv.purge(key);
  }
  return moved;
}
