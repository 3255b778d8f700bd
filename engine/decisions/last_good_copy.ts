// The last good answer of a pulled resource, kept on disk: written whole (tmp + rename), read at start.
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../_write_atomic.ts";

/**
 * What is kept of one answer: its ETag, when it was fetched, when the backend last confirmed it
 * (a `304`; absent in copies written before it was kept), where from, and the body as read.
 */
export interface StoredCopy {
  etag: string | null;
  fetched_at: string;
  checked_at?: string;
  url: string;
  body: unknown;
}

/**
 * One resource's copy at `dir/<name>.json`. `save` writes a temporary file, flushes it to disk
 * and renames it over the old one, so a crash leaves the old copy or the new one, never half.
 *
 * @example const copy = new LastGoodCopy(".data/engine/decisions", "silences"); await copy.load();
 */
export class LastGoodCopy {
  readonly path: string;
  readonly #dir: string;

  constructor(dir: string, name: string) {
    if (!/^[a-z][a-z0-9_-]*$/.test(name)) {
      throw new RangeError(`'name' must be a plain file name, got ${JSON.stringify(name)}`);
    }
    this.#dir = dir;
    this.path = join(dir, `${name}.json`);
  }

  /**
   * The stored copy; `undefined` when there is none; `{problem}` when there is a file that cannot
   * be read as one (truncated, not JSON, not a file): the caller says so and goes on without it.
   */
  async load(): Promise<StoredCopy | { problem: string } | undefined> {
    let text: string;
    try {
      text = await readFile(this.path, "utf8");
    } catch (error) {
      if ((error as { code?: string }).code === "ENOENT") return undefined;
      return { problem: `cannot be read: ${(error as Error).message}` };
    }
    try {
      const copy = JSON.parse(text) as StoredCopy;
      if (typeof copy !== "object" || copy === null || !("body" in copy)) {
        return { problem: "is not a stored copy (no body)" };
      }
      return copy;
    } catch (error) {
      return { problem: `is not JSON (truncated?): ${(error as Error).message}` };
    }
  }

  /** Replaces the copy atomically. */
  async save(copy: StoredCopy): Promise<void> {
    await mkdir(this.#dir, { recursive: true });
    await writeFileAtomic(this.path, JSON.stringify(copy));
  }
}
