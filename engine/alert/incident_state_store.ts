// Keeps each stream's incident state across restarts: a small port and its file adapter in DATA_DIR.
import { mkdir, open, readdir, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
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

// Stream ids match [A-Za-z0-9._:-]{1,128}; ':' is not portable in file names, so encode.
const fileOf = (streamId: string) => `${encodeURIComponent(streamId).replace(/\./g, "%2E")}.json`;
const streamOf = (file: string) => decodeURIComponent(file.slice(0, -".json".length));

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
      try {
        state = JSON.parse(await readFile(path, "utf8")) as StoredIncidentState;
        if (typeof state !== "object" || state === null) throw new Error("not a stored state");
      } catch (error) {
        const aside = `${path}.unusable-${new Date().toISOString().replace(/[:.]/g, "-")}`;
        await rename(path, aside).catch(() => rm(path, { force: true }));
        this.#onUnusable?.(aside, (error as Error).message);
        continue;
      }
      states.set(streamOf(file), state);
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
        await file.writeFile(JSON.stringify(state));
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
