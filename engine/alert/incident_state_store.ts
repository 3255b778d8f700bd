// Keeps each stream's incident state across restarts: a small port and its file adapter in DATA_DIR.
import { createHash } from "node:crypto";
import { mkdir, open, readdir, readFile, rename, rm, rmdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { MODEL_NAME_PATTERN } from "../../contracts/models_api.ts";
import type { StreamSnapshot } from "../../scoring/incident_tracker.ts";
import type { AlertRecord } from "./alert_sender.ts";

/**
 * What is kept per stream: the tracker's snapshot (absent once the stream holds nothing) and
 * the alerts its last events produced. Those alerts are written here before they enter the
 * outbox, so after a crash between the two writes the next start still delivers them.
 */
export interface StoredIncidentState {
  snapshot?: StreamSnapshot;
  alerts?: AlertRecord[];
  /**
   * The model the snapshot's sensor indices belong to: its name, the version serving when it
   * was saved, and `featuresSha256` of its feature names. Absent in states saved before it was kept.
   */
  model?: SavedModel;
  /**
   * A stream the tracker forgot (no incident, nothing confirming), kept while its windows may be
   * handed over again (a scale-out partition re-read from its committed position, which the saved
   * state is ahead of): `last` is its newest window's timestamp (windows up to it change nothing,
   * as a snapshot's `last` has it) and `at` the driver's position then, past which a commit
   * deletes it. Without it a re-read window of an incident already resolved opened a second one.
   */
  forgotten?: ForgottenMark;
  /**
   * The stream's step (stream time between its last two windows) when it was saved: after a
   * restart its first window is judged by the gap rule with it, as a live stream is (a stream
   * sampled every 10 minutes is not silent between two of its frames). Absent: not known.
   */
  step?: number;
}

/** See `StoredIncidentState.forgotten`. */
export interface ForgottenMark {
  last: number;
  at: number;
}

/** Which sensors a stored snapshot's indices name (see `StoredIncidentState.model`). */
export interface SavedModel {
  name: string;
  version: string;
  features: string;
}

/** One stream's change: `state` undefined deletes it. */
export interface IncidentStateChange {
  streamId: string;
  state: StoredIncidentState | undefined;
}

/**
 * The port: per-stream JSON state, loaded once at start, saved as streams change. Adapters: a
 * folder of files (`FileIncidentStateStore`); a key-value bucket fits the same shape.
 */
export interface IncidentStateStore {
  /** Every stream's state, as last saved. */
  load(): Promise<Map<string, StoredIncidentState>>;
  /**
   * Saves (or deletes) the changes. `durable`: resolve only once they would survive a crash
   * (the engine asks for it when the changes carry alerts).
   */
  save(changes: readonly IncidentStateChange[], durable: boolean): Promise<void>;
}

/**
 * Longest encoded file name kept readable (`.json` included): with `.tmp`, `.unusable-<time>` or
 * `.superseded-<time>` after it, well under the 255 bytes a file name may have.
 */
const MAX_READABLE_NAME = 160;
/** Characters of the encoded stream id kept before the hash in a hashed name. */
const HASHED_PREFIX = 48;

/**
 * The file of a stream. Stream ids match [A-Za-z0-9._:-]{1,128}; ':' is not portable in file
 * names, so they are percent-encoded, which makes ':' and '.' three bytes each: a 128-character id
 * of them would be 384 bytes, past what a file name may have. Such an id is named by a readable
 * prefix and the SHA-256 of the id (`~` never occurs in an encoded id, so the two forms never
 * meet); `load` reads the id from the file's content (`StoredFile.streamId`), not from its name.
 */
export const fileOf = (streamId: string): string => {
  const encoded = encodeURIComponent(streamId).replace(/\./g, "%2E");
  if (encoded.length + ".json".length <= MAX_READABLE_NAME) return `${encoded}.json`;
  const hash = createHash("sha256").update(streamId).digest("hex");
  return `${encoded.slice(0, HASHED_PREFIX).replace(/%[0-9A-F]?$/, "")}~${hash}.json`;
};
const streamOf = (file: string) => decodeURIComponent(file.slice(0, -".json".length));
const hashed = (file: string) => file.includes("~");

/** A state as written: the stream it belongs to, beside the state (absent in older files). */
type StoredFile = StoredIncidentState & { streamId?: unknown };

/**
 * One JSON file per stream under `dir` (`DATA_DIR/incidents`), replaced atomically (write a
 * temporary file, fsync it when durable, rename; then fsync the folder). A torn temporary file
 * from a crash is ignored at load.
 */
export class FileIncidentStateStore implements IncidentStateStore {
  readonly #dir: string;
  readonly #onUnusable: ((file: string, problem: string) => void) | undefined;
  #ready: Promise<unknown> | undefined;

  /**
   * `onUnusable` hears of a state file that cannot be read (a power cut can leave one torn): it
   * is moved aside as `<file>.unusable-<time>` and its stream starts afresh, rather than the
   * engine not starting at all.
   */
  constructor(dir: string, options: { onUnusable?: (file: string, problem: string) => void } = {}) {
    this.#dir = dir;
    this.#onUnusable = options.onUnusable;
  }

  async load(): Promise<Map<string, StoredIncidentState>> {
    await this.#mkdir();
    const states = new Map<string, StoredIncidentState>();
    for (const file of await readdir(this.#dir)) {
      if (!file.endsWith(".json")) continue;
      const path = join(this.#dir, file);
      let state: StoredIncidentState;
      let streamId: string;
      try {
        const stored = JSON.parse(await readFile(path, "utf8")) as StoredFile;
        if (typeof stored !== "object" || stored === null) throw new Error("not a stored state");
        const { streamId: named, ...rest } = stored;
        if (typeof named === "string") streamId = named;
        else if (hashed(file)) throw new Error("names no stream");
        else streamId = streamOf(file);
        state = rest;
      } catch (error) {
        const aside = `${path}.unusable-${new Date().toISOString().replace(/[:.]/g, "-")}`;
        await rename(path, aside).catch(() => rm(path, { force: true }));
        this.#onUnusable?.(aside, (error as Error).message);
        continue;
      }
      const own = fileOf(streamId);
      if (own !== file) {
        // Saved by an earlier release under its encoded name, now too long to keep: the stream's
        // file is its hashed one from now on. One already there was written since, so is newer.
        const there = await stat(join(this.#dir, own)).catch(() => undefined);
        if (there) {
          await rm(path, { force: true });
          continue;
        }
        await rename(path, join(this.#dir, own));
      }
      states.set(streamId, state);
    }
    return states;
  }

  async save(changes: readonly IncidentStateChange[], durable: boolean): Promise<void> {
    if (changes.length === 0) return;
    await this.#mkdir();
    for (const { streamId, state } of changes) {
      const path = join(this.#dir, fileOf(streamId));
      if (state === undefined) {
        await rm(path, { force: true });
        continue;
      }
      const tmp = `${path}.tmp`;
      const file = await open(tmp, "w");
      try {
        await file.writeFile(JSON.stringify({ streamId, ...state } satisfies StoredFile));
        if (durable) await file.sync();
      } finally {
        await file.close();
      }
      await rename(tmp, path);
    }
    if (durable) {
      const dir = await open(this.#dir, "r");
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    }
  }

  #mkdir(): Promise<unknown> {
    this.#ready ??= mkdir(this.#dir, { recursive: true });
    return this.#ready;
  }
}

/** The folder of model `model`'s incident states: `DATA_DIR/incidents-<model>`, whichever lane it serves. */
export const incidentStateDir = (dataDir: string, model: string): string =>
  join(dataDir, `incidents-${model}`);

/**
 * The models that have a folder of incident states in `dataDir` ({@link incidentStateDir}),
 * whether they are served or not: the engine resolves the incidents of those it does not serve.
 */
export async function modelsWithIncidentStates(dataDir: string): Promise<string[]> {
  const names = await readdir(dataDir, { withFileTypes: true }).catch((error) => {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  });
  const models: string[] = [];
  for (const entry of names) {
    if (!entry.isDirectory() || !entry.name.startsWith("incidents-")) continue;
    const model = entry.name.slice("incidents-".length);
    if (MODEL_NAME_PATTERN.test(model)) models.push(model);
  }
  return models.sort();
}

/**
 * Moves the states an earlier release kept in `DATA_DIR/incidents/` (the default model's, whichever
 * model was the default then) into the folder of the model each was saved under
 * ({@link incidentStateDir}; `defaultModel` for a state saved before states named their model),
 * so a model that stops or starts being the default keeps its own open incidents and never loads
 * another model's. Where that model's folder already holds the stream (the model was routed in
 * between), the newer file stays and the older is moved aside as `<file>.superseded-<time>`. A torn
 * temporary file is removed; an unreadable state goes to `defaultModel`'s folder, whose load moves it
 * aside. Each move is a rename, so a crash part-way leaves the rest for the next start. Returns how
 * many states were moved.
 */
export async function moveLegacyIncidentStates(
  dataDir: string,
  defaultModel: string,
): Promise<number> {
  const legacy = join(dataDir, "incidents");
  let files: string[];
  try {
    files = await readdir(legacy);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return 0;
    throw error;
  }
  let moved = 0;
  for (const file of files) {
    const from = join(legacy, file);
    if (file.endsWith(".json.tmp")) {
      await rm(from, { force: true });
      continue;
    }
    let model = defaultModel;
    if (file.endsWith(".json")) {
      try {
        const name = (JSON.parse(await readFile(from, "utf8")) as StoredIncidentState)?.model?.name;
        if (typeof name === "string" && MODEL_NAME_PATTERN.test(name)) model = name;
      } catch {
        // Unreadable: the default model's load moves it aside and warns.
      }
    }
    const dir = incidentStateDir(dataDir, model);
    await mkdir(dir, { recursive: true });
    const to = join(dir, file);
    const there = await stat(to).catch(() => undefined);
    if (there) {
      const here = await stat(from);
      const aside = `.superseded-${new Date().toISOString().replace(/[:.]/g, "-")}`;
      if (here.mtimeMs <= there.mtimeMs) {
        await rename(from, `${to}${aside}`);
        continue;
      }
      await rename(to, `${to}${aside}`);
    }
    await rename(from, to);
    if (file.endsWith(".json")) moved++;
  }
  await rmdir(legacy).catch(() => {});
  return moved;
}
