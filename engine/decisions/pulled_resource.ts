// One resource of the backend pulled with If-None-Match, validated, and kept as its last good copy.
import * as v from "valibot";
import { deadlineSignal } from "../../contracts/deadline.ts";
import { containedFetch } from "../../telemetry/contained_fetch.ts";
import { LastGoodCopy, type StoredCopy } from "./last_good_copy.ts";

/** Where a pulled resource stands, for logs and tests. */
export interface PullStatus {
  /** Whether a copy (from disk or the backend) is held. */
  held: boolean;
  etag: string | null;
  /** When the copy in use was fetched from the backend (null: none held). */
  fetched_at: string | null;
  /**
   * When the copy in use was last known current: the pull that fetched it, or a later one the
   * backend answered `304` (for a copy from disk with no pull since: the last such pull it
   * recorded, at most {@link CHECKED_SAVE_EVERY_MS} behind, or its `fetched_at`).
   */
  checked_at: string | null;
  /** Outcome of the latest pull: `updated` (200), `unchanged` (304), `failed`, or `none` yet. */
  last: "updated" | "unchanged" | "failed" | "none";
  last_error: string | null;
  /** Why the copy in use is not on disk (its save failed; tried again at each pull), or null. */
  unsaved: string | null;
}

/**
 * How often a `304` writes its time into the copy on disk, so that after a restart with the
 * backend down the copy's age counts from its last confirmation, not from its fetch (days ago for
 * silences nobody changed), without a write per poll.
 */
export const CHECKED_SAVE_EVERY_MS = 60_000;

export interface PulledResourceOptions<S extends v.GenericSchema> {
  url: string;
  schema: S;
  /** The directory the last good copy lives in, and its file name there. */
  dir: string;
  name: string;
  fetch?: typeof fetch;
  /** The longest a pull may take. */
  timeoutMs?: number;
  /** Sent as `Authorization: Bearer`, when set. */
  token?: string;
}

/**
 * A resource the engine mirrors from the backend. `load()` takes the copy on disk; `pull()` asks
 * for what changed since (`If-None-Match`): a `200` whose body fits the schema replaces the
 * value and the copy on disk, a `304` keeps both, and anything else (the backend down, an error
 * status, a body off the contract) changes nothing: the last good value stays in use.
 *
 * A checked value is used even when its copy cannot be saved (disk full, read-only): a silence
 * set now matters more than the copy a restart would find. Then `status.unsaved` says why, each
 * pull tries the save again first, and pulls send no `If-None-Match` until it worked: a `304`
 * must not confirm a value the disk does not hold.
 */
export class PulledResource<S extends v.GenericSchema> {
  readonly #options: PulledResourceOptions<S>;
  readonly #copy: LastGoodCopy;
  #value: v.InferOutput<S> | undefined;
  /** The copy of the value in use while it is not on disk. */
  #unsaved: StoredCopy | undefined;
  /** The copy on disk, as last written or read (to record a `304`'s time in it). */
  #stored: StoredCopy | undefined;
  #status: PullStatus = {
    held: false,
    etag: null,
    fetched_at: null,
    checked_at: null,
    last: "none",
    last_error: null,
    unsaved: null,
  };

  constructor(options: PulledResourceOptions<S>) {
    this.#options = options;
    this.#copy = new LastGoodCopy(options.dir, options.name);
  }

  /** The latest good value, or `undefined` before the first one. */
  get value(): v.InferOutput<S> | undefined {
    return this.#value;
  }

  get status(): PullStatus {
    return { ...this.#status };
  }

  /**
   * Takes the copy on disk when there is one that fits the schema; resolves with whether it did,
   * or with what is wrong with the file there (then it goes on without it, as with none).
   */
  async load(): Promise<boolean | { problem: string }> {
    const copy = await this.#copy.load();
    if (!copy) return false;
    if ("problem" in copy) return { problem: `${this.#copy.path} ${copy.problem}` };
    const parsed = v.safeParse(this.#options.schema, copy.body);
    if (!parsed.success) {
      const issue = parsed.issues[0];
      return {
        problem: `${this.#copy.path} does not fit the contract: ${v.getDotPath(issue) ?? "body"}: ${issue.message}`,
      };
    }
    this.#value = parsed.output;
    this.#stored = copy;
    this.#status = {
      ...this.#status,
      held: true,
      etag: copy.etag,
      fetched_at: copy.fetched_at,
      checked_at: laterOf(copy.checked_at, copy.fetched_at),
    };
    return true;
  }

  /** Asks the backend once; resolves with the outcome (never rejects). */
  async pull(signal?: AbortSignal): Promise<PullStatus["last"]> {
    const { url, schema } = this.#options;
    const doFetch = this.#options.fetch ?? containedFetch;
    const deadline = deadlineSignal(this.#options.timeoutMs ?? 10_000, signal);
    const headers: Record<string, string> = { accept: "application/json" };
    if (this.#options.token) headers.authorization = `Bearer ${this.#options.token}`;
    if (this.#unsaved) await this.#save(this.#unsaved);
    // Only a held value, saved, can be confirmed by a 304.
    if (this.#value !== undefined && this.#status.etag && !this.#unsaved)
      headers["if-none-match"] = this.#status.etag;
    try {
      const res = await doFetch(url, {
        headers,
        signal: deadline.signal,
      });
      if (res.status === 304 && this.#value !== undefined) {
        await res.body?.cancel();
        const checkedAt = new Date().toISOString();
        this.#status = { ...this.#status, checked_at: checkedAt };
        const stored = this.#stored;
        const savedAt = stored ? Date.parse(laterOf(stored.checked_at, stored.fetched_at)) : 0;
        if (stored && !(Date.parse(checkedAt) - savedAt < CHECKED_SAVE_EVERY_MS)) {
          await this.#save({ ...stored, checked_at: checkedAt });
        }
        return this.#settle("unchanged", null);
      }
      if (res.status !== 200) {
        await res.body?.cancel();
        return this.#settle("failed", `${url} answered ${res.status}`);
      }
      const body: unknown = await res.json();
      const parsed = v.safeParse(schema, body);
      if (!parsed.success) {
        const issue = parsed.issues[0];
        return this.#settle(
          "failed",
          `${url}: off contract at ${v.getDotPath(issue)}: ${issue.message}`,
        );
      }
      const etag = res.headers.get("etag");
      const fetchedAt = new Date().toISOString();
      await this.#save({ etag, fetched_at: fetchedAt, url, body });
      this.#value = parsed.output;
      this.#status = {
        ...this.#status,
        held: true,
        etag,
        fetched_at: fetchedAt,
        checked_at: fetchedAt,
      };
      return this.#settle("updated", null);
    } catch (error) {
      return this.#settle("failed", `${url}: ${(error as Error).message}`);
    } finally {
      deadline.clear();
    }
  }

  /** Saves `copy`; when that fails, it is kept as unsaved (the reason in the status). */
  async #save(copy: StoredCopy): Promise<void> {
    try {
      await this.#copy.save(copy);
      this.#stored = copy;
      this.#unsaved = undefined;
      this.#status = { ...this.#status, unsaved: null };
    } catch (error) {
      this.#unsaved = copy;
      this.#status = {
        ...this.#status,
        unsaved: `${this.#copy.path} cannot be saved: ${(error as Error).message}`,
      };
    }
  }

  #settle(last: PullStatus["last"], error: string | null): PullStatus["last"] {
    this.#status = { ...this.#status, last, last_error: error };
    return last;
  }
}

/** The later of a copy's recorded confirmation (when it has one that reads as a time) and its fetch. */
function laterOf(checkedAt: string | undefined, fetchedAt: string): string {
  const checked = checkedAt === undefined ? Number.NaN : Date.parse(checkedAt);
  return checked > Date.parse(fetchedAt) ? (checkedAt as string) : fetchedAt;
}
