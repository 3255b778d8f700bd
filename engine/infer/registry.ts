// The model registry on disk: MODEL_DIR/<name>/<version>/ holds one version, MODEL_DIR/<name>/ACTIVE says which serves.
import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, readdir, readFile, rename, rm, stat, utimes } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { type ModelMetadata, parseModelMetadata } from "../../contracts/model.ts";
import { syncDir, writeFileAtomic } from "../_write_atomic.ts";
import {
  beyondNewest,
  checkKeepVersions,
  KEEP_VERSIONS,
  mayPrune,
  type Pruning,
  pruneReason,
} from "./prune_policy.ts";

export { KEEP_VERSIONS, PRUNE_MIN_AGE_MS, type Pruning } from "./prune_policy.ts";

/** A version string that is also a safe folder name (`2.2.0+2c5406cfb2d9`). */
export const VERSION_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;
/** A model name (the metadata's `name`, the folder and file stem). */
export const MODEL_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

const ACTIVE = "ACTIVE.json";
const ACTIVATIONS = "activations.jsonl";
const PRUNED = "pruned.jsonl";

/**
 * A temporary folder or file of a write older than this was left by a writer that died (`kill
 * -9`, a power cut) and is removed by the next write; a younger one may be another process's
 * write in progress (a 400 MB graph takes seconds).
 */
export const STALE_WRITE_MS = 60 * 60_000;
/**
 * Pruning skips a version the last activation record names from within this long (its pointer
 * may be about to name it), and a write leaves a `.pruning-*` folder this young alone (another
 * process's prune may be putting it back).
 */
export const ACTIVATION_GRACE_MS = 60_000;
/**
 * How long an activation that finds its version moved aside after writing the pointer waits for a
 * prune that saw the new pointer to put it back, before it puts the previous pointer back.
 */
export const ACTIVATION_RECHECK_MS = 2_000;
const RECHECK_POLL_MS = 50;

/** A registry problem with a stable code (the operations API answers it as 4xx). */
export class RegistryError extends Error {
  readonly code:
    | "model_not_found"
    | "version_not_found"
    | "invalid_version"
    | "invalid_model_name"
    | "version_exists"
    | "registry_entry_invalid";

  constructor(code: RegistryError["code"], message: string) {
    super(message);
    this.name = "RegistryError";
    this.code = code;
  }
}

/** One activation: who switched `name` from which version to which, when and why. */
export interface Activation {
  name: string;
  version: string;
  from: string | null;
  by: string;
  at: string;
  reason: string;
}

/**
 * The `from` of an activation of `version`: the pointer's version (`pointed`), unless the one
 * activating serves another (`serving`: the pointer's was refused or not followed yet, so it
 * never served and cannot stand in when `version` fails to load). Then it is `serving`, or,
 * `version` being the one serving, the `from` of the last record in `history` that activated it
 * (null without one): re-activating what serves keeps its rollback target.
 *
 * @example rollbackTarget("garbage", "e522", "e522", history) // "cf7b", e522's earlier from
 */
export function rollbackTarget(
  pointed: string | undefined,
  version: string,
  serving: string | undefined,
  history: readonly Activation[],
): string | null {
  if (serving === undefined || pointed === undefined || pointed === serving) return pointed ?? null;
  if (serving !== version) return serving;
  const earlier = history.findLast((a) => a.version === version)?.from;
  return earlier && earlier !== version ? earlier : null;
}

/** Where a version's files are: `loadModel({ dir, name })` loads it. */
export interface VersionRef {
  name: string;
  version: string;
  dir: string;
  /** `registry`: MODEL_DIR/<name>/<version>/; `flat`: MODEL_DIR/<name>.onnx + .json (one version). */
  layout: "registry" | "flat";
}

/**
 * Test seam: awaited at the steps where another writer's prune or activation may slip in, or a
 * crash leaves a half-done activation, so tests can force each. Production code passes none.
 */
export interface RegistryHooks {
  /** In `activate`, once the version verified, before its record and pointer are written. */
  activateVerified?: (name: string, version: string) => Promise<void>;
  /** In `activate`, once its history line is appended, before the pointer is written. */
  activationRecorded?: (record: Activation) => Promise<void>;
  /** In pruning, once the version was renamed aside, before the pointer is read again. */
  pruneMovedAside?: (name: string, version: string) => Promise<void>;
}

/** A model as the registry holds it. */
export interface RegistryModel {
  name: string;
  layout: "registry" | "flat";
  /** Complete versions, oldest first (by when they were written). */
  versions: string[];
  /** The active version, or undefined when none was activated yet. */
  active: string | undefined;
}

const isSafeName = (name: string) => MODEL_NAME_PATTERN.test(name) && !name.includes("..");
export const isSafeVersion = (version: string): boolean =>
  VERSION_PATTERN.test(version) && !version.includes("..");

function checkName(name: string): void {
  if (!isSafeName(name)) {
    throw new RegistryError(
      "invalid_model_name",
      `model name ${JSON.stringify(name)} is not a safe name ([A-Za-z0-9._-], 1..128, no '..')`,
    );
  }
}

function checkVersion(version: string): void {
  if (!isSafeVersion(version)) {
    throw new RegistryError(
      "invalid_version",
      `version ${JSON.stringify(version)} is not a safe path segment ([A-Za-z0-9._+-], 1..128, no '..')`,
    );
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Appends `line` to a JSON-lines history and fsyncs it. */
async function appendLine(path: string, line: string): Promise<void> {
  const log = await open(path, "a+");
  try {
    // After a torn last line (a crash or a full disk mid-append) the record starts a line of
    // its own, or it would be read as part of the torn one and skipped with it.
    const { size } = await log.stat();
    const last = Buffer.alloc(1);
    if (size > 0) await log.read(last, 0, 1, size - 1);
    const torn = size > 0 && last[0] !== 0x0a;
    await log.appendFile(`${torn ? "\n" : ""}${line}\n`);
    await log.sync();
  } finally {
    await log.close();
  }
}

/**
 * Removes from a model's folder what writers that died left: `.incoming-*` version folders and
 * `.*.tmp` files (`writeFileAtomic`) not changed for STALE_WRITE_MS, and `.pruning-*` folders
 * (a prune cut short; nobody writes into them) once renamed ACTIVATION_GRACE_MS ago. Never
 * throws: the write goes on.
 */
async function sweepStale(folder: string): Promise<void> {
  const now = Date.now();
  for (const entry of await readdir(folder).catch(() => [] as string[])) {
    const path = join(folder, entry);
    const left =
      entry.startsWith(".incoming-") || (entry.startsWith(".") && entry.endsWith(".tmp"));
    const pruning = entry.startsWith(".pruning-");
    if (!left && !pruning) continue;
    // A rename sets the ctime (not the mtime): a young `.pruning-*` folder may be put back yet.
    const changed = await stat(path).then(
      (s) => (pruning ? s.ctimeMs : s.mtimeMs),
      () => now,
    );
    if (now - changed < (pruning ? ACTIVATION_GRACE_MS : STALE_WRITE_MS)) continue;
    await rm(path, { recursive: true, force: true }).catch(() => {});
  }
}

/** A file's sha256, hex; streamed: no copy of a graph is kept (ONNX Runtime reads its own). */
async function sha256Of(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk);
  return hash.digest("hex");
}

/**
 * Reads and checks one version's files: metadata that parses, names `name` and `version`, and a
 * graph whose sha256 is the metadata's `onnx_sha256`. Throws `registry_entry_invalid` naming
 * the entry otherwise.
 */
export async function verifyVersion(ref: VersionRef): Promise<ModelMetadata> {
  const where = `${ref.name}@${ref.version} (${ref.dir})`;
  let meta: ModelMetadata;
  try {
    meta = parseModelMetadata(
      JSON.parse(await readFile(join(ref.dir, `${ref.name}.json`), "utf8")),
    );
  } catch (error) {
    throw new RegistryError("registry_entry_invalid", `${where}: ${(error as Error).message}`);
  }
  if (meta.name !== ref.name || meta.version !== ref.version) {
    throw new RegistryError(
      "registry_entry_invalid",
      `${where}: metadata names ${meta.name}@${meta.version}`,
    );
  }
  let sha: string;
  try {
    sha = await sha256Of(join(ref.dir, `${ref.name}.onnx`));
  } catch (error) {
    throw new RegistryError("registry_entry_invalid", `${where}: ${(error as Error).message}`);
  }
  if (sha !== meta.onnx_sha256) {
    throw new RegistryError(
      "registry_entry_invalid",
      `${where}: the graph's sha256 ${sha.slice(0, 12)} is not the metadata's ${meta.onnx_sha256.slice(0, 12)} (corrupt or half-written)`,
    );
  }
  return meta;
}

/**
 * Puts right version `ref`, whose folder exists but fails verification (`problem`), with a write
 * of `onnx` + `meta`: only when these are that version (the graph hashes to `meta`'s sha256, and
 * that is the sha256 the folder's metadata names, or, its metadata unreadable, its graph's), the
 * broken file is replaced; refused with `version_exists` otherwise. Never more than one file is
 * broken and rewritten (both broken: what the version was cannot be told), so the version turns
 * whole in one rename; the new file is written in an `.incoming-*` folder first, as a new
 * version's, so a writer killed meanwhile leaves what `sweepStale` removes, never a mixed file.
 */
async function repairVersion(
  ref: VersionRef,
  onnx: Uint8Array,
  meta: ModelMetadata,
  problem: Error,
): Promise<void> {
  const { name, version, dir } = ref;
  const files = { graph: `${name}.onnx`, metadata: `${name}.json` };
  const held = await readFile(join(dir, files.metadata), "utf8")
    .then((text) => parseModelMetadata(JSON.parse(text)))
    .catch(() => undefined);
  const heldMeta = held?.name === name && held.version === version ? held : undefined;
  const given = createHash("sha256").update(onnx).digest("hex");
  // The version's identity: its metadata's sha256, or (that unreadable) the graph it holds.
  const expected =
    heldMeta?.onnx_sha256 ?? (await sha256Of(join(dir, files.graph)).catch(() => undefined));
  if (given !== meta.onnx_sha256 || expected !== meta.onnx_sha256) {
    const why =
      given !== meta.onnx_sha256
        ? `the graph written hashes to ${given.slice(0, 12)}, not its metadata's ${meta.onnx_sha256.slice(0, 12)}`
        : heldMeta
          ? `its metadata names another graph (${heldMeta.onnx_sha256.slice(0, 12)}) than this write's (${meta.onnx_sha256.slice(0, 12)})`
          : "its metadata cannot be read and its graph is not this write's, so nothing says this write is that version";
    throw new RegistryError(
      "version_exists",
      `${name}@${version} exists but is corrupt, and is not replaced: ${why}. ${problem.message}`,
    );
  }
  const broken = heldMeta ? files.graph : files.metadata;
  // The folder's mtime is when the version was written (listing order, pruning age): kept.
  const written = await stat(dir);
  const folder = join(dir, "..");
  const tmp = join(folder, `.incoming-${version}-${randomBytes(4).toString("hex")}`);
  await mkdir(tmp);
  try {
    await writeFileAtomic(
      join(tmp, broken),
      heldMeta ? onnx : `${JSON.stringify(meta, null, 1)}\n`,
    );
    await rename(join(tmp, broken), join(dir, broken));
    await utimes(dir, written.atime, written.mtime);
    await syncDir(dir);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  // Checked again: a version is only ever repaired into one that verifies.
  await verifyVersion(ref);
}

/**
 * The registry under `modelDir`. A version is a folder `<name>/<version>/` holding
 * `<name>.onnx` and `<name>.json`, written under a temporary dot-name and renamed into place
 * whole, so a crash while writing leaves a dot-folder that is never listed, loaded or
 * activated. `<name>/ACTIVE.json` (replaced atomically) names the active version with its
 * activation record; `<name>/activations.jsonl` keeps every activation (append-only, fsync'd).
 * A flat `NAME.onnx` + `NAME.json` with no `NAME/` folder is a model with one version, active.
 *
 * Each write first removes what a writer that died left (temporary folders and files older than
 * {@link STALE_WRITE_MS}), then prunes the model's versions beyond the newest `keepVersions`
 * ({@link KEEP_VERSIONS}): never the active one, the one active before it (the rollback
 * target), or one written within {@link PRUNE_MIN_AGE_MS}; each pruned version gets a line in
 * `<name>/pruned.jsonl` before it goes. Its retraining report stays. Neither ever fails a write.
 */
export class ModelRegistry {
  readonly dir: string;
  readonly #keep: number;
  readonly #hooks: RegistryHooks;
  /** Flat models' versions by metadata path, with the file's size and time they were read at. */
  readonly #flatVersions = new Map<string, { size: number; mtimeMs: number; version: string }>();

  constructor(dir: string, options: { keepVersions?: number; hooks?: RegistryHooks } = {}) {
    this.dir = dir;
    this.#keep = checkKeepVersions(options.keepVersions ?? KEEP_VERSIONS);
    this.#hooks = options.hooks ?? {};
  }

  /** Every model, registry and flat, by name. */
  async list(): Promise<RegistryModel[]> {
    const entries = await readdir(this.dir, { withFileTypes: true }).catch(() => []);
    const folders = new Set(
      entries.filter((e) => e.isDirectory() && isSafeName(e.name)).map((e) => e.name),
    );
    const models: RegistryModel[] = [];
    for (const name of [...folders].sort()) {
      // A folder with no version and no pointer is no model (MODEL_DIR=models, the default
      // outside `npm start`, also holds the training code's folders).
      const model = await this.model(name);
      if (model.versions.length > 0 || model.active !== undefined) models.push(model);
    }
    for (const e of entries) {
      if (!e.isFile() || !e.name.endsWith(".json")) continue;
      const name = e.name.slice(0, -5);
      if (folders.has(name) || !isSafeName(name)) continue;
      if (!(await exists(join(this.dir, `${name}.onnx`)))) continue;
      models.push(await this.model(name));
    }
    return models.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** One model; `model_not_found` when neither layout holds it. */
  async model(name: string): Promise<RegistryModel> {
    return await this.#model(name, false);
  }

  /**
   * `model`, with `lenientPointer` reading an unreadable `ACTIVE.json` as no active version: what
   * naming a version explicitly needs (activating one is how a broken pointer is repaired).
   */
  async #model(name: string, lenientPointer: boolean): Promise<RegistryModel> {
    checkName(name);
    const folder = join(this.dir, name);
    if (await exists(folder)) {
      const entries = await readdir(folder, { withFileTypes: true });
      const found: { version: string; at: number }[] = [];
      for (const e of entries) {
        if (!e.isDirectory() || e.name.startsWith(".") || !isSafeVersion(e.name)) continue;
        const files = join(folder, e.name);
        if (
          !(await exists(join(files, `${name}.json`))) ||
          !(await exists(join(files, `${name}.onnx`)))
        ) {
          continue;
        }
        found.push({ version: e.name, at: (await stat(files)).mtimeMs });
      }
      found.sort((a, b) => a.at - b.at || a.version.localeCompare(b.version));
      const pointer = await this.#pointer(name).catch((error: unknown) => {
        if (lenientPointer && error instanceof RegistryError) return undefined;
        throw error;
      });
      return {
        name,
        layout: "registry",
        versions: found.map((f) => f.version),
        active: pointer?.version,
      };
    }
    const json = join(this.dir, `${name}.json`);
    if ((await exists(json)) && (await exists(join(this.dir, `${name}.onnx`)))) {
      const version = await this.#flatVersion(json);
      return { name, layout: "flat", versions: [version], active: version };
    }
    throw new RegistryError(
      "model_not_found",
      `no model ${JSON.stringify(name)} in ${this.dir} (neither ${name}.onnx + ${name}.json nor ${name}/<version>/)`,
    );
  }

  /**
   * A flat model's version, from its metadata; read again only when the file changed (its size or
   * modification time): parsing 25,000 features' metadata took a quarter of a second per model
   * on every `GET /models`.
   */
  async #flatVersion(json: string): Promise<string> {
    try {
      const { size, mtimeMs } = await stat(json);
      const known = this.#flatVersions.get(json);
      if (known && known.size === size && known.mtimeMs === mtimeMs) return known.version;
      const version = parseModelMetadata(JSON.parse(await readFile(json, "utf8"))).version;
      this.#flatVersions.set(json, { size, mtimeMs, version });
      return version;
    } catch (error) {
      throw new RegistryError("registry_entry_invalid", `${json}: ${(error as Error).message}`);
    }
  }

  /** Where version `version` of `name` is (the active one when `version` is undefined). */
  async resolve(name: string, version?: string): Promise<VersionRef> {
    const model = await this.#model(name, version !== undefined);
    if (version !== undefined) checkVersion(version);
    const wanted = version ?? model.active;
    if (wanted === undefined) {
      throw new RegistryError("version_not_found", `model ${name} has no active version`);
    }
    if (!model.versions.includes(wanted)) {
      throw new RegistryError("version_not_found", `model ${name} has no version ${wanted}`);
    }
    return model.layout === "flat"
      ? { name, version: wanted, dir: this.dir, layout: "flat" }
      : { name, version: wanted, dir: join(this.dir, name, wanted), layout: "registry" };
  }

  /**
   * Writes a new version (its version string is the metadata's `version`), immutable once
   * written: the same version again with the same graph is a no-op (`created: false`), with
   * another graph `version_exists`. A version there but corrupt (it fails {@link verifyVersion})
   * is repaired by writing it again (`created` and `repaired`; see {@link repairVersion}), and
   * refused (`version_exists`, saying it is corrupt) when this write is not that version.
   * Activates it when the model has no active version yet or `activate` is set. Cleans and prunes the model's folder (see the class); `pruned` names the
   * versions it removed.
   */
  async write(
    onnx: Uint8Array,
    meta: ModelMetadata,
    options: { activate?: boolean; by?: string; reason?: string } = {},
  ): Promise<{
    ref: VersionRef;
    created: boolean;
    /** The version was there but corrupt, and this write put its broken file right. */
    repaired: boolean;
    activated: Activation | undefined;
    pruned: string[];
  }> {
    const { name, version } = meta;
    checkName(name);
    checkVersion(version);
    if ((await exists(join(this.dir, `${name}.json`))) && !(await exists(join(this.dir, name)))) {
      throw new RegistryError(
        "version_exists",
        `${this.dir} holds ${name} in the flat layout (${name}.onnx + ${name}.json); write its versions to another MODEL_DIR or move it into ${name}/<version>/`,
      );
    }
    const folder = join(this.dir, name);
    const final = join(folder, version);
    await mkdir(folder, { recursive: true });
    await sweepStale(folder);
    const ref: VersionRef = { name, version, dir: final, layout: "registry" };
    let created = false;
    let repaired = false;
    if (await exists(final)) {
      const existing = await verifyVersion(ref).then(
        (intact) => ({ intact }),
        (problem: Error) => ({ intact: undefined, problem }),
      );
      if (existing.intact) {
        if (existing.intact.onnx_sha256 !== meta.onnx_sha256) {
          throw new RegistryError(
            "version_exists",
            `${name}@${version} exists with another graph; a version is immutable once written`,
          );
        }
      } else {
        // A disk fault or a hand copy broke it: writing the same version again is the repair.
        await repairVersion(ref, onnx, meta, existing.problem);
        created = true;
        repaired = true;
      }
    } else {
      const tmp = join(folder, `.incoming-${version}-${randomBytes(4).toString("hex")}`);
      await mkdir(tmp);
      try {
        await writeFileAtomic(join(tmp, `${name}.onnx`), onnx);
        await writeFileAtomic(join(tmp, `${name}.json`), `${JSON.stringify(meta, null, 1)}\n`);
        await rename(tmp, final);
        await syncDir(folder);
        created = true;
      } catch (error) {
        await rm(tmp, { recursive: true, force: true });
        throw error;
      }
    }
    const current = await this.#pointer(name);
    const activated =
      options.activate || !current
        ? await this.activate(name, version, {
            by: options.by ?? "train",
            reason: options.reason ?? (current ? "activated when written" : "first version"),
          })
        : undefined;
    const pruned = await this.#prune(name).catch(() => []);
    return { ref, created, repaired, activated, pruned };
  }

  /**
   * Makes `version` the active one and records the activation (who, when, from, to, why). The
   * version must be complete and verify (graph and metadata agree). Rolling back is activating
   * the previous version. A prune in another process that moved the version aside before it
   * could see the new pointer makes it fail with `version_not_found`, the previous pointer back.
   * `who.serving` (an engine activating) is the version it serves: when the pointer names another
   * one (refused, or not followed yet) that one never served, so it is no rollback target; the
   * record's `from` is then `serving`, or, re-activating `serving` itself, the `from` of the
   * record that last activated it (see {@link rollbackTarget}).
   */
  async activate(
    name: string,
    version: string,
    who: { by: string; reason?: string; serving?: string },
  ): Promise<Activation> {
    const ref = await this.resolve(name, version);
    if (ref.layout === "flat") {
      throw new RegistryError(
        "version_not_found",
        `model ${name} is in the flat layout: its one version is always active`,
      );
    }
    await verifyVersion(ref);
    await this.#hooks.activateVerified?.(name, version);
    const folder = join(this.dir, name);
    const at = new Date().toISOString();
    // An unreadable pointer (a disk fault, a hand edit) is repaired by activating a version: it is
    // kept aside, never erased, and the history's last record says what was active before it.
    let current: Activation | undefined;
    let keptAside: string | undefined;
    try {
      current = await this.#pointer(name);
    } catch (error) {
      if (!(error instanceof RegistryError)) throw error;
      keptAside = `${ACTIVE}.unreadable-${at.replaceAll(":", "-")}`;
      await rename(join(folder, ACTIVE), join(folder, keptAside));
      current = (await this.activations(name).catch(() => [])).at(-1);
    }
    const reason = who.reason ?? "";
    const record: Activation = {
      name,
      version,
      from: rollbackTarget(
        current?.version,
        version,
        who.serving,
        who.serving === version ? await this.activations(name).catch(() => []) : [],
      ),
      by: who.by,
      at,
      reason: keptAside
        ? `${reason}${reason ? " " : ""}(replaced an unreadable ACTIVE.json, kept as ${keptAside})`
        : reason,
    };
    // The history first: a crash between the two leaves a record of an attempted activation
    // whose pointer did not move, never a pointer that moved without a record.
    await appendLine(join(folder, ACTIVATIONS), JSON.stringify(record));
    await this.#hooks.activationRecorded?.(record);
    await writeFileAtomic(join(folder, ACTIVE), `${JSON.stringify(record)}\n`);
    // A prune renames a version aside before it reads the pointer again, and puts it back if the
    // pointer names it. Still gone after ACTIVATION_RECHECK_MS: a prune read the pointer before
    // this one was written and removed it, so the previous pointer goes back (if still ours).
    if (!(await this.#reappears(ref.dir))) {
      if (
        JSON.stringify(await this.#pointer(name).catch(() => undefined)) === JSON.stringify(record)
      ) {
        if (current) await writeFileAtomic(join(folder, ACTIVE), `${JSON.stringify(current)}\n`);
        else await rm(join(folder, ACTIVE), { force: true });
      }
      throw new RegistryError(
        "version_not_found",
        `model ${name} has no version ${version} (pruned while it was being activated)`,
      );
    }
    return record;
  }

  /**
   * Stores the retraining report of `version` beside its folder (`<name>/<version>.retrain.json`),
   * replacing any before it atomically.
   */
  async putReport(name: string, version: string, report: unknown): Promise<void> {
    checkName(name);
    checkVersion(version);
    await writeFileAtomic(
      join(this.dir, name, `${version}.retrain.json`),
      `${JSON.stringify(report, null, 1)}\n`,
    );
  }

  /** Every recorded activation of `name`, oldest first (a torn last line is skipped). */
  async activations(name: string): Promise<Activation[]> {
    checkName(name);
    const text = await readFile(join(this.dir, name, ACTIVATIONS), "utf8").catch(() => "");
    const out: Activation[] = [];
    for (const line of text.split("\n")) {
      if (!line.trim()) continue;
      try {
        out.push(JSON.parse(line) as Activation);
      } catch {
        // A crash mid-append leaves a partial last line: the activation did not happen.
      }
    }
    return out;
  }

  /**
   * The active version of a model in the registry layout, from its pointer alone (cheap: one
   * small file); undefined for a model without a folder or an active version.
   */
  async activeVersion(name: string): Promise<string | undefined> {
    checkName(name);
    return (await this.#pointer(name))?.version;
  }

  /**
   * The activation record the pointer holds: the activation that took effect, which the last
   * line of `activations.jsonl` may not be (that line is written first, so an activation that
   * failed or was killed before its pointer write leaves it behind as an attempt). Undefined
   * without a pointer; `registry_entry_invalid` when it cannot be read.
   */
  async activeRecord(name: string): Promise<Activation | undefined> {
    checkName(name);
    return await this.#pointer(name);
  }

  /**
   * Removes `name`'s versions beyond the newest `keepVersions` that are not active, not the
   * rollback target and not written within PRUNE_MIN_AGE_MS. A model without a readable pointer
   * is left alone (what is active is not known). Lock-free against an activation in another
   * process: each is renamed aside (out of every listing) first, then the pointer and the
   * activation history are read again, and it is put back if the pointer or its `from` names it
   * or the last activation record named it within ACTIVATION_GRACE_MS (`activate` waits for that).
   * Only then its line goes to `pruned.jsonl` and the folder is removed: a crash leaves at most
   * a `.pruning-*` folder (with or without its line) that a later write removes, never a line
   * for a version still listed.
   */
  async #prune(name: string): Promise<string[]> {
    const { versions } = await this.model(name);
    if (versions.length <= this.#keep || !(await this.#pointer(name))) return [];
    const folder = join(this.dir, name);
    const pruned: string[] = [];
    for (const version of beyondNewest(versions, this.#keep)) {
      // Read again for each: an activation by another process may have moved it meanwhile.
      const pointer = await this.#pointer(name);
      const path = join(folder, version);
      const written = await stat(path).then(
        (s) => s.mtimeMs,
        () => undefined,
      );
      // Gone already (another process pruned it), active, the rollback target or too young.
      if (written === undefined || !mayPrune(version, written, pointer, Date.now())) continue;
      const aside = join(folder, `.pruning-${version}-${randomBytes(4).toString("hex")}`);
      if (
        !(await rename(path, aside).then(
          () => true,
          () => false,
        ))
      )
        continue;
      await this.#hooks.pruneMovedAside?.(name, version);
      if (await this.#wanted(name, version)) {
        // If that fails (the version written again meanwhile) a later write removes the aside one.
        await rename(aside, path).catch(() => {});
        continue;
      }
      const record: Pruning = {
        name,
        version,
        written_at: new Date(written).toISOString(),
        at: new Date().toISOString(),
        reason: pruneReason(this.#keep),
      };
      await appendLine(join(folder, PRUNED), JSON.stringify(record));
      await rm(aside, { recursive: true, force: true }).catch(() => {});
      pruned.push(version);
    }
    return pruned;
  }

  /**
   * Whether an activation wants `version` now: the pointer or its `from` names it, or the last
   * activation record does and is recent (appended, its pointer not yet written).
   */
  async #wanted(name: string, version: string): Promise<boolean> {
    // None or unreadable: what is active is not known, so it stays.
    const pointer = await this.#pointer(name).catch(() => undefined);
    if (!pointer || pointer.version === version || pointer.from === version) return true;
    const last = (await this.activations(name)).at(-1);
    return last?.version === version && Date.now() - Date.parse(last.at) < ACTIVATION_GRACE_MS;
  }

  /** Whether the folder `dir` is there, or is back within ACTIVATION_RECHECK_MS. */
  async #reappears(dir: string): Promise<boolean> {
    const deadline = AbortSignal.timeout(ACTIVATION_RECHECK_MS);
    while (!(await exists(dir))) {
      if (deadline.aborted) return false;
      await delay(RECHECK_POLL_MS);
    }
    return true;
  }

  async #pointer(name: string): Promise<Activation | undefined> {
    const text = await readFile(join(this.dir, name, ACTIVE), "utf8").catch(() => undefined);
    if (text === undefined) return undefined;
    try {
      const record = JSON.parse(text) as Activation;
      if (typeof record.version === "string" && isSafeVersion(record.version)) return record;
    } catch {
      // fall through
    }
    throw new RegistryError(
      "registry_entry_invalid",
      `${join(this.dir, name, ACTIVE)} does not name a version`,
    );
  }
}
