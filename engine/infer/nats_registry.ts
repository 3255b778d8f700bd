// The model registry under scale-out: versions in a JetStream Object Store, the active pointer and every activation in KV.
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { KV, KvEntry } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { Base64UrlPaddedCodec, type ObjectInfo, type ObjectStore, StorageType } from "@nats-io/obj";
import { type ModelMetadata, parseModelMetadata } from "../../contracts/model.ts";
import { kvBucket, objectBucket } from "../_buckets.ts";
import { delay } from "../_delay.ts";
import {
  beyondNewest,
  checkKeepVersions,
  KEEP_VERSIONS,
  mayPrune,
  type Pruning,
  pruneReason,
} from "./prune_policy.ts";
import {
  ACTIVATION_GRACE_MS,
  ACTIVATION_RECHECK_MS,
  type Activation,
  MODEL_NAME_PATTERN,
  ModelRegistry,
  RegistryError,
  rollbackTarget,
  STALE_WRITE_MS,
  VERSION_PATTERN,
  type VersionRef,
  verifyVersion,
} from "./registry.ts";

/** How long a publisher may take to upload a version before another takes its claim over. */
const CLAIM_MS = 30_000;
/** How often an activation looks whether a prune holding its version has let it go. */
const RECHECK_POLL_MS = 50;

/** Refusals of the shared registry that the on-disk one has no need for. */
export class NatsRegistryError extends Error {
  readonly code: /** Other feature names or window size than the active version: workers cannot switch live. */
    | "model_incompatible"
    /** The pointer moved between reading and writing it (two activations at once). */
    | "activation_conflict";

  constructor(code: NatsRegistryError["code"], message: string) {
    super(message);
    this.name = "NatsRegistryError";
    this.code = code;
  }
}

/**
 * Test seam: awaited at the steps where another writer's prune or activation may slip in, so
 * tests can force each interleaving. Production code passes none.
 */
export interface NatsRegistryHooks {
  /** In `activate`, once the version verified, before the pointer is read and written. */
  activateVerified?: (name: string, version: string) => Promise<void>;
  /** In pruning, once the prune lock names the version, before the pointer is read again. */
  pruneLocked?: (name: string, version: string) => Promise<void>;
  /** In pruning, once the pointer read again allows removing the version, before it goes. */
  pruneDecided?: (name: string, version: string) => Promise<void>;
}

export interface NatsRegistryOptions {
  /** Versions a model keeps at least ({@link KEEP_VERSIONS}). */
  keepVersions?: number;
  hooks?: NatsRegistryHooks;
}

/** A version's files in the Object Store: `<name>/<version>/<name>.onnx` and `.json`. */
export type VersionFile = "onnx" | "json";

/**
 * `<name>/<version>/<name>.retrain.json`: the retraining report of a version a worker retrained
 * (not a version file: `versions` and `metadata` never read it).
 */
const REPORT = "retrain.json";

const objectName = (name: string, version: string, file: VersionFile | typeof REPORT) =>
  `${name}/${version}/${name}.${file}`;
const pointerKey = (name: string) => `active.${name}`;
const historyPrefix = (name: string) => `history.${name}.`;
// Revisions zero-padded so the history's keys sort in activation order.
const historyKey = (name: string, revision: number) =>
  `${historyPrefix(name)}${String(revision).padStart(12, "0")}`;
// Versions never hold '=', so this spelling of '+' (not a KV key character) is unambiguous.
const claimKey = (name: string, version: string) =>
  `publishing.${name}.${version.replaceAll("+", "=")}`;
/** One prune of `name` at a time: `{version, at}`, the version it is on (null between two). */
const pruneLockKey = (name: string) => `pruning.${name}`;
const prunedPrefix = (name: string) => `pruned.${name}.`;
// The prune lock's revision when it named the version: unique, in pruning order.
const prunedKey = (name: string, revision: number) =>
  `${prunedPrefix(name)}${String(revision).padStart(12, "0")}`;

/** What {@link pruneLockKey} holds. */
interface PruneLock {
  version: string | null;
  at: string;
}

/** Where a worker reports the versions it has loaded (`loaded.<worker id>`). */
export const loadedKey = (workerId: string) => `loaded.${workerId}`;

/**
 * What a worker reports under {@link loadedKey}: per model served, its active and loaded
 * versions, and `refused`, the pointer's version it does not serve because it cannot load it;
 * `name`, `active` and `versions` repeat `DEFAULT_MODEL_NAME`'s.
 */
export interface LoadedReport {
  name: string;
  active: string;
  versions: string[];
  models?: Record<
    string,
    { active: string; versions: string[]; refused?: { version: string; error: string } }
  >;
  at: string;
}

/** The versions of model `name` a worker's report says are loaded. */
export function loadedVersions(report: Partial<LoadedReport>, name: string): string[] {
  const model = report.models?.[name];
  if (model) return model.versions ?? [];
  return report.name === name ? (report.versions ?? []) : [];
}

function checkName(name: string): void {
  // A trailing dot would make an empty KV key token.
  if (!MODEL_NAME_PATTERN.test(name) || name.includes("..") || name.endsWith(".")) {
    throw new RegistryError(
      "invalid_model_name",
      `model name ${JSON.stringify(name)} is not a safe name ([A-Za-z0-9._-], 1..128, no '..', no trailing '.')`,
    );
  }
}

function checkVersion(version: string): void {
  if (!VERSION_PATTERN.test(version) || version.includes("..")) {
    throw new RegistryError(
      "invalid_version",
      `version ${JSON.stringify(version)} is not a safe path segment ([A-Za-z0-9._+-], 1..128, no '..')`,
    );
  }
}

/** A version's metadata and graph objects, those there (not deleted). */
interface VersionObjects {
  json?: ObjectInfo;
  onnx?: ObjectInfo;
}

/** The complete versions (metadata there) and when each was published, oldest first. */
function listed(files: Map<string, VersionObjects>): { version: string; at: number }[] {
  const found: { version: string; at: number }[] = [];
  for (const [version, { json }] of files) {
    if (json) found.push({ version, at: Date.parse(json.mtime) });
  }
  return found.sort((a, b) => a.at - b.at || a.version.localeCompare(b.version));
}

/** The Object Store's digest of bytes whose sha256 is `hex` (`SHA-256=` + padded base64url). */
const objectDigest = (hex: string) =>
  `SHA-256=${Base64UrlPaddedCodec.encode(Uint8Array.from(Buffer.from(hex, "hex")))}`;

/** Feature names and window size agree: a worker can switch between two batches. */
export function sameLayout(a: ModelMetadata, b: ModelMetadata): boolean {
  return (
    a.window_size === b.window_size &&
    a.feature_names.length === b.feature_names.length &&
    a.feature_names.every((f, i) => f === b.feature_names[i])
  );
}

/** A revision-checked KV write that lost the race (JetStream "wrong last sequence"). */
export const isWrongSequence = (error: unknown) =>
  (error as { code?: number }).code === 10071 ||
  /wrong last sequence|key exists/i.test((error as Error).message ?? "");

/**
 * The registry of a scale-out deployment, shared by every ingest replica and worker. A version is
 * two objects in bucket `<prefix>_models`, the graph written before the metadata, so a version
 * whose metadata is missing (a publish that died) is never listed, loaded or activated; a
 * version is immutable once published. In KV bucket `<prefix>_model_pointer`, `active.<name>`
 * holds the active version's activation record (who, when, from, to, why), written with the
 * revision it replaces, and `history.<name>.<revision>` keeps each record for good.
 *
 * Each publish prunes as the on-disk registry's writes do ({@link mayPrune}): of the versions
 * beyond the newest `keepVersions` ({@link KEEP_VERSIONS}) every one goes but the active one, its
 * rollback target and one published within a day; `pruned.<name>.<revision>` keeps a record of
 * each for good. A graph whose metadata never came (a publish or a prune that died) goes once
 * an hour old ({@link STALE_WRITE_MS}). Neither ever fails the publish. One writer prunes a
 * model at a time, holding `pruning.<name>`, which names the version it is on: it writes that,
 * then reads the pointer again, and an activation writes the pointer, then reads the lock (see
 * `#activate`), so a version being activated is never removed.
 *
 * @example
 * const registry = await NatsModelRegistry.open(nc, "FRAMES");
 * await registry.publish(onnx, meta, { activate: true, by: "train" });
 */
export class NatsModelRegistry {
  readonly objects: ObjectStore;
  readonly kv: KV;
  /** The Object Store bucket's name (messages name it). */
  readonly bucket: string;
  readonly #keep: number;
  readonly #hooks: NatsRegistryHooks;

  constructor(objects: ObjectStore, kv: KV, bucket: string, options: NatsRegistryOptions = {}) {
    this.objects = objects;
    this.kv = kv;
    this.bucket = bucket;
    this.#keep = checkKeepVersions(options.keepVersions ?? KEEP_VERSIONS);
    this.#hooks = options.hooks ?? {};
  }

  /** Opens (creating when missing) the two buckets of deployment `prefix` (`NATS_STREAM`). */
  static async open(
    nc: NatsConnection,
    prefix: string,
    options: NatsRegistryOptions = {},
  ): Promise<NatsModelRegistry> {
    const bucket = `${prefix}_models`;
    const objects = await objectBucket(nc, bucket, { storage: StorageType.File });
    const kv = await kvBucket(nc, `${prefix}_model_pointer`, { history: 1 });
    return new NatsModelRegistry(objects, kv, bucket, options);
  }

  /** Complete versions of `name`, oldest first (by when their metadata was published). */
  async versions(name: string): Promise<string[]> {
    checkName(name);
    return listed(await this.#objectsOf(name)).map((f) => f.version);
  }

  /** Per version of `name`, its metadata and graph objects (those not deleted). */
  async #objectsOf(name: string): Promise<Map<string, VersionObjects>> {
    const found = new Map<string, VersionObjects>();
    for (const info of await this.objects.list()) {
      if (info.deleted) continue;
      const parts = info.name.split("/");
      if (parts.length !== 3 || parts[0] !== name) continue;
      const file = parts[2] === `${name}.json` ? "json" : parts[2] === `${name}.onnx` ? "onnx" : "";
      if (!file) continue;
      found.set(parts[1], { ...found.get(parts[1]), [file]: info });
    }
    return found;
  }

  /**
   * The metadata of a published version, checked: it parses, names the version, and the graph
   * object's digest is the metadata's `onnx_sha256`. `model_not_found`, `version_not_found` or
   * `registry_entry_invalid` otherwise.
   */
  async metadata(name: string, version: string): Promise<ModelMetadata> {
    checkName(name);
    checkVersion(version);
    const where = `${name}@${version} (bucket ${this.bucket})`;
    const json = await this.objects.getBlob(objectName(name, version, "json"));
    if (!json) {
      if ((await this.versions(name)).length === 0) {
        throw new RegistryError("model_not_found", `no model ${JSON.stringify(name)} published`);
      }
      throw new RegistryError("version_not_found", `model ${name} has no version ${version}`);
    }
    let meta: ModelMetadata;
    try {
      meta = parseModelMetadata(JSON.parse(new TextDecoder().decode(json)));
    } catch (error) {
      throw new RegistryError("registry_entry_invalid", `${where}: ${(error as Error).message}`);
    }
    if (meta.name !== name || meta.version !== version) {
      throw new RegistryError(
        "registry_entry_invalid",
        `${where}: metadata names ${meta.name}@${meta.version}`,
      );
    }
    const graph = await this.objects.info(objectName(name, version, "onnx"));
    if (!graph || graph.deleted || graph.digest !== objectDigest(meta.onnx_sha256)) {
      throw new RegistryError(
        "registry_entry_invalid",
        `${where}: the graph is missing or its digest is not the metadata's sha256 ${meta.onnx_sha256.slice(0, 12)}`,
      );
    }
    return meta;
  }

  /** One file of a version (the Object Store checks its digest while reading). */
  async read(name: string, version: string, file: VersionFile): Promise<Uint8Array> {
    checkName(name);
    checkVersion(version);
    const data = await this.objects.getBlob(objectName(name, version, file));
    if (!data) {
      throw new RegistryError("version_not_found", `model ${name} has no version ${version}`);
    }
    return data;
  }

  /**
   * Stores the retraining report of published version `version` beside it (the worker that
   * retrained it writes it once, after publishing). `version_not_found` when not published.
   */
  async putReport(name: string, version: string, report: unknown): Promise<void> {
    await this.metadata(name, version);
    const text = `${JSON.stringify(report, null, 1)}\n`;
    await this.objects.putBlob(
      { name: objectName(name, version, REPORT) },
      new TextEncoder().encode(text),
    );
  }

  /** The retraining report stored beside `version`; undefined when it was not retrained here. */
  async report(name: string, version: string): Promise<unknown> {
    checkName(name);
    checkVersion(version);
    const data = await this.objects.getBlob(objectName(name, version, REPORT));
    return data ? JSON.parse(new TextDecoder().decode(data)) : undefined;
  }

  /**
   * Publishes a version (its version string is the metadata's). The same version again with
   * the same graph is a no-op (`created: false`); with another graph it is refused with
   * `version_exists`, so is a graph whose sha256 is not the metadata's (`registry_entry_invalid`).
   * Activates it when the model has no active version yet, or with `activate`. Then prunes the
   * model (see the class); `pruned` names the versions it removed.
   */
  async publish(
    onnx: Uint8Array,
    meta: ModelMetadata,
    options: { activate?: boolean; by?: string; reason?: string } = {},
  ): Promise<{ created: boolean; activated: Activation | undefined; pruned: string[] }> {
    const { name, version } = meta;
    checkName(name);
    checkVersion(version);
    const sha = createHash("sha256").update(onnx).digest("hex");
    if (sha !== meta.onnx_sha256) {
      throw new RegistryError(
        "registry_entry_invalid",
        `${name}@${version}: the graph's sha256 ${sha.slice(0, 12)} is not the metadata's ${meta.onnx_sha256.slice(0, 12)}`,
      );
    }
    const created = await this.#upload(onnx, meta);
    if (!created) {
      const stored = await this.metadata(name, version).catch(() => undefined);
      if (stored?.onnx_sha256 !== meta.onnx_sha256) {
        throw new RegistryError(
          "version_exists",
          `${name}@${version} is published with another graph; a version is immutable once published`,
        );
      }
    }
    const current = await this.pointerEntry(name);
    let activated: Activation | undefined;
    if (options.activate || !current) {
      const who = {
        by: options.by ?? "train",
        reason: options.reason ?? (current ? "activated when published" : "first version"),
      };
      // The first version only while there is still none: of two first publishers one wins.
      activated = await this.#activate(name, version, who, !options.activate);
    }
    const pruned = await this.#prune(name).catch(() => [] as string[]);
    return { created, activated, pruned };
  }

  /** Publishes a version held on disk (`ModelRegistry.resolve`), checked first. */
  async publishFromDisk(
    ref: VersionRef,
    options: { activate?: boolean; by?: string; reason?: string } = {},
  ): Promise<{
    created: boolean;
    activated: Activation | undefined;
    pruned: string[];
    meta: ModelMetadata;
  }> {
    const meta = await verifyVersion(ref);
    const onnx = await readFile(join(ref.dir, `${ref.name}.onnx`));
    return { ...(await this.publish(onnx, meta, options)), meta };
  }

  /** The active version's activation record with its KV revision; undefined when none. */
  async pointerEntry(name: string): Promise<{ record: Activation; revision: number } | undefined> {
    checkName(name);
    const entry = await this.kv.get(pointerKey(name));
    if (entry?.operation !== "PUT") return undefined;
    try {
      const record = entry.json<Activation>();
      if (typeof record.version === "string") return { record, revision: entry.revision };
    } catch {
      // fall through
    }
    throw new RegistryError("registry_entry_invalid", `the pointer of ${name} names no version`);
  }

  /** The active version's activation record; undefined when none was activated. */
  async pointer(name: string): Promise<Activation | undefined> {
    return (await this.pointerEntry(name))?.record;
  }

  /**
   * Makes `version` the active one and records it (who, when, from, to, why). The version must
   * be published and intact, and have the active version's feature names and window size
   * (`model_incompatible`); the pointer is written with the revision read, so of two
   * activations at once one is refused (`activation_conflict`). Rolling back is activating the
   * previous version. A prune in another writer that read the pointer before this one moved it
   * and removed the version makes it fail with `version_not_found`, the previous version put back.
   * `who.serving`: the version the caller knows serves; a pointer naming another (refused by the
   * workers) is then no rollback target (`rollbackTarget`, as `ModelRegistry.activate`).
   */
  activate(
    name: string,
    version: string,
    who: { by: string; reason?: string; serving?: string },
  ): Promise<Activation> {
    return this.#activate(name, version, who, false);
  }

  /** `firstOnly`: refused (`activation_conflict`) once the model has an active version. */
  async #activate(
    name: string,
    version: string,
    who: { by: string; reason?: string; serving?: string },
    firstOnly: boolean,
  ): Promise<Activation> {
    const meta = await this.metadata(name, version);
    await this.#hooks.activateVerified?.(name, version);
    const current = firstOnly ? undefined : await this.pointerEntry(name);
    if (current) {
      // A writer that died between pointer and history left the record only in the pointer.
      await this.#remember(name, current.record, current.revision);
      const from = await this.metadata(name, current.record.version).catch(() => undefined);
      if (from && !sameLayout(from, meta)) {
        throw new NatsRegistryError(
          "model_incompatible",
          `${name}@${version} has ${meta.n_features} features and windows of ${meta.window_size}, ` +
            `the active ${from.version} ${from.n_features} and ${from.window_size}; ` +
            "under FRAME_BUS=nats workers switch only between versions of the same features and window size",
        );
      }
    }
    const record: Activation = {
      name,
      version,
      from: rollbackTarget(
        current?.record.version,
        version,
        who.serving,
        who.serving === version ? await this.activations(name).catch(() => []) : [],
      ),
      by: who.by,
      at: new Date().toISOString(),
      reason: who.reason ?? "",
    };
    const value = JSON.stringify(record);
    let revision: number;
    try {
      revision = current
        ? await this.kv.update(pointerKey(name), value, current.revision)
        : await this.kv.create(pointerKey(name), value);
    } catch (error) {
      if (!isWrongSequence(error)) throw error;
      throw new NatsRegistryError(
        "activation_conflict",
        `the active version of ${name} changed while activating ${version}; try again`,
      );
    }
    await this.#remember(name, record, revision);
    // The pointer first, the prune lock after; a prune writes the lock first, the pointer read
    // after: one of the two sees the other's write (see `#prune`).
    if (!(await this.#survivesPruning(name, version))) {
      await this.#putBack(name, record, revision, current?.record);
      throw new RegistryError(
        "version_not_found",
        `model ${name} has no version ${version} (pruned while it was being activated; try again)`,
      );
    }
    return record;
  }

  /**
   * Whether `version`, which the pointer names now, stays: once no prune holds it (a prune that
   * does let it go within ACTIVATION_RECHECK_MS counts as removing it), its metadata is there.
   */
  async #survivesPruning(name: string, version: string): Promise<boolean> {
    const deadline = AbortSignal.timeout(ACTIVATION_RECHECK_MS);
    for (;;) {
      const held = (await this.#pruneLock(name))?.lock;
      // A lock not renewed within its grace is a pruner's that died (or gave up before removing).
      if (held?.version !== version || Date.now() - Date.parse(held.at) >= ACTIVATION_GRACE_MS) {
        break;
      }
      if (!(await delay(RECHECK_POLL_MS, deadline))) return false;
    }
    const info = await this.objects.info(objectName(name, version, "json"));
    return Boolean(info && !info.deleted);
  }

  /**
   * Moves the pointer, still at `revision` (`record`, naming a version pruned under it), back to
   * the version and rollback target of `previous` with a record of its own; none moves it when
   * another activation did meanwhile.
   */
  async #putBack(
    name: string,
    record: Activation,
    revision: number,
    previous: Activation | undefined,
  ): Promise<void> {
    if (!previous) {
      await this.kv.delete(pointerKey(name), { previousSeq: revision }).catch(() => {});
      return;
    }
    const back: Activation = {
      name,
      version: previous.version,
      from: previous.from,
      by: record.by,
      at: new Date().toISOString(),
      reason: `put back: ${record.version} was pruned while it was being activated`,
    };
    const moved = await this.kv.update(pointerKey(name), JSON.stringify(back), revision).then(
      (r) => r,
      () => undefined,
    );
    if (moved !== undefined) await this.#remember(name, back, moved);
  }

  /** Every activation of `name`, oldest first; none is ever erased. */
  async activations(name: string): Promise<Activation[]> {
    checkName(name);
    const { keys, records: out } = await this.#records<Activation>(historyPrefix(name));
    const current = await this.pointerEntry(name);
    if (current && !keys.includes(historyKey(name, current.revision))) out.push(current.record);
    return out;
  }

  /** Every version of `name` pruned, in pruning order; none is ever erased. */
  async pruned(name: string): Promise<Pruning[]> {
    checkName(name);
    return (await this.#records<Pruning>(prunedPrefix(name))).records;
  }

  /**
   * The records under `prefix` (one token more: its zero-padded revision), oldest first. Read in
   * one pass of the bucket's stream (the bucket keeps one value a key), not one request a key:
   * 2,000 activations took half a second that way.
   */
  async #records<T>(prefix: string): Promise<{ keys: string[]; records: T[] }> {
    const found = new Map<string, KvEntry>();
    for await (const entry of await this.kv.history({ key: `${prefix}*` })) {
      if (entry.key.slice(prefix.length).includes(".")) continue;
      if (entry.operation === "PUT") found.set(entry.key, entry);
      else found.delete(entry.key);
    }
    const keys = [...found.keys()].sort();
    return { keys, records: keys.map((key) => (found.get(key) as KvEntry).json<T>()) };
  }

  /**
   * Removes what publishes and prunes that died left of `name` (graphs without metadata, an hour
   * old), then `name`'s versions beyond the newest `keepVersions` that {@link mayPrune} allows.
   * A model without a readable pointer is left alone (what is active is not known); so is one
   * another writer is pruning now (the next publish prunes what it left). For each version, the
   * lock is set to name it and only then the pointer read again: an activation that moved the
   * pointer before that is seen (the version stays), one that moves it after sees the lock and
   * waits for it to move on (`#survivesPruning`). The metadata goes first (out of every
   * listing), then the record is written and the graph goes; the retraining report stays.
   */
  async #prune(name: string): Promise<string[]> {
    const files = await this.#objectsOf(name);
    await this.#sweep(files).catch(() => {});
    const candidates = beyondNewest(listed(files), this.#keep);
    let pointer = (await this.pointerEntry(name))?.record;
    if (!candidates.some((c) => mayPrune(c.version, c.at, pointer, Date.now()))) return [];
    const key = pruneLockKey(name);
    let revision = await this.#lockPruning(name);
    if (revision === undefined) return [];
    const pruned: string[] = [];
    try {
      for (const { version, at } of candidates) {
        if (!mayPrune(version, at, pointer, Date.now())) continue;
        const lock: PruneLock = { version, at: new Date().toISOString() };
        const locked = Date.now();
        revision = await this.kv.update(key, JSON.stringify(lock), revision);
        await this.#hooks.pruneLocked?.(name, version);
        pointer = (await this.pointerEntry(name).catch(() => undefined))?.record;
        if (!mayPrune(version, at, pointer, Date.now())) continue;
        // Held up for half the lock's grace: an activation may take the lock for stale soon.
        if (Date.now() - locked > ACTIVATION_GRACE_MS / 2) break;
        await this.#hooks.pruneDecided?.(name, version);
        await this.objects.delete(objectName(name, version, "json"));
        const record: Pruning = {
          name,
          version,
          written_at: new Date(at).toISOString(),
          at: new Date().toISOString(),
          reason: pruneReason(this.#keep),
        };
        await this.kv.create(prunedKey(name, revision), JSON.stringify(record));
        pruned.push(version);
        await this.objects.delete(objectName(name, version, "onnx"));
        // Its publish claim too, so publishing the version again need not wait it out.
        await this.#deleteKey(claimKey(name, version));
      }
    } catch {
      // NATS failed, or another writer took the lock over: the next publish goes on from here.
    } finally {
      await this.kv.delete(key, { previousSeq: revision }).catch(() => {});
    }
    return pruned;
  }

  /**
   * Takes `name`'s prune lock: its revision, or undefined while another writer holds it. A lock
   * not renewed within ACTIVATION_GRACE_MS is a pruner's that died, taken over.
   */
  async #lockPruning(name: string): Promise<number | undefined> {
    const key = pruneLockKey(name);
    const lock: PruneLock = { version: null, at: new Date().toISOString() };
    const value = JSON.stringify(lock);
    const created = await this.kv.create(key, value).then(
      (r) => r,
      (error) => {
        if (!isWrongSequence(error)) throw error;
        return undefined;
      },
    );
    if (created !== undefined) return created;
    const held = await this.#pruneLock(name);
    if (!held || Date.now() - Date.parse(held.lock.at) < ACTIVATION_GRACE_MS) return undefined;
    return this.kv.update(key, value, held.entry.revision).then(
      (r) => r,
      () => undefined,
    );
  }

  /** The prune lock of `name` while one is held (unreadable: as if held, on no version). */
  async #pruneLock(name: string): Promise<{ lock: PruneLock; entry: KvEntry } | undefined> {
    const entry = await this.kv.get(pruneLockKey(name));
    if (entry?.operation !== "PUT") return undefined;
    try {
      return { lock: entry.json<PruneLock>(), entry };
    } catch {
      return { lock: { version: null, at: entry.created.toISOString() }, entry };
    }
  }

  /** Removes graphs whose metadata is missing, unchanged for STALE_WRITE_MS. */
  async #sweep(files: Map<string, VersionObjects>): Promise<void> {
    for (const { json, onnx } of files.values()) {
      if (json || !onnx || Date.now() - Date.parse(onnx.mtime) < STALE_WRITE_MS) continue;
      await this.objects.delete(onnx.name);
    }
  }

  /** Deletes a KV key; a key KV refuses (a version ending in '.') or a failure changes nothing. */
  async #deleteKey(key: string): Promise<void> {
    try {
      await this.kv.delete(key);
    } catch {
      // Left: a stale claim only makes a later publish of the version wait CLAIM_MS.
    }
  }

  /**
   * Calls `onChange` with the active record of `name` now and at every change, until `signal`
   * aborts; a watch that fails is opened again.
   */
  async follow(
    name: string,
    signal: AbortSignal,
    onChange: (record: Activation) => void | Promise<void>,
    onError: (error: Error) => void,
  ): Promise<void> {
    checkName(name);
    while (!signal.aborted) {
      try {
        const watch = await this.kv.watch({ key: pointerKey(name) });
        const stop = () => watch.stop();
        signal.addEventListener("abort", stop, { once: true });
        try {
          for await (const entry of watch) {
            if (entry.operation !== "PUT") continue;
            await onChange(entry.json<Activation>());
          }
        } finally {
          signal.removeEventListener("abort", stop);
        }
      } catch (error) {
        if (!signal.aborted) onError(error as Error);
      }
      await delay(500, signal);
    }
  }

  /**
   * Uploads a version unless it is there: false when it already was. One publisher at a time
   * per version (a KV claim): an object being replaced while another process reads it leaves that
   * reader waiting for chunks that are gone, so a complete version's objects are never written
   * again. A claim whose upload does not complete within CLAIM_MS (its publisher died) is taken over.
   */
  async #upload(onnx: Uint8Array, meta: ModelMetadata): Promise<boolean> {
    const { name, version } = meta;
    const complete = async () => {
      const info = await this.objects.info(objectName(name, version, "json"));
      return Boolean(info && !info.deleted);
    };
    const key = claimKey(name, version);
    const claim = JSON.stringify({ onnx_sha256: meta.onnx_sha256, at: new Date().toISOString() });
    for (;;) {
      if (await complete()) return false;
      let mine = await this.kv.create(key, claim).then(
        () => true,
        (error) => {
          if (!isWrongSequence(error)) throw error;
          return false;
        },
      );
      if (!mine) {
        const held = await this.kv.get(key);
        const theirs = held?.operation === "PUT" ? held.json<{ onnx_sha256: string }>() : undefined;
        if (theirs && theirs.onnx_sha256 !== meta.onnx_sha256) return false;
        const deadline = AbortSignal.timeout(CLAIM_MS);
        while (!(await complete()) && (await delay(100, deadline)));
        if (await complete()) return false;
        mine = held
          ? await this.kv.update(key, claim, held.revision).then(
              () => true,
              () => false,
            )
          : false;
        if (!mine) continue;
      }
      // The graph first: metadata present means the version is complete.
      await this.objects.putBlob({ name: objectName(name, version, "onnx") }, onnx);
      const text = `${JSON.stringify(meta, null, 1)}\n`;
      await this.objects.putBlob(
        { name: objectName(name, version, "json") },
        new TextEncoder().encode(text),
      );
      return true;
    }
  }

  async #remember(name: string, record: Activation, revision: number): Promise<void> {
    await this.kv.create(historyKey(name, revision), JSON.stringify(record)).catch((error) => {
      if (!isWrongSequence(error)) throw error;
    });
  }
}

/**
 * The active record of model `name` (default `DEFAULT_MODEL_NAME`) in the shared registry. A
 * deployment whose registry has none yet is seeded from `MODEL_DIR`: its active version (or flat
 * model) is published and activated, once, however many processes start at the same time.
 */
export async function activeOrSeed(
  registry: NatsModelRegistry,
  config: { MODEL_DIR: string; DEFAULT_MODEL_NAME: string },
  by: string,
  name: string = config.DEFAULT_MODEL_NAME,
): Promise<Activation> {
  const current = await registry.pointer(name);
  if (current) return current;
  const ref = await new ModelRegistry(config.MODEL_DIR).resolve(name);
  await registry
    .publishFromDisk(ref, { by, reason: `first version, from ${config.MODEL_DIR}` })
    .catch((error) => {
      // Another process seeded it in between.
      if (!(error instanceof NatsRegistryError && error.code === "activation_conflict")) {
        throw error;
      }
    });
  const seeded = await registry.pointer(name);
  if (!seeded) throw new RegistryError("version_not_found", `model ${name} has no active version`);
  return seeded;
}
