// How much room the training history's disk has for the bounds of the models it records.
import { readdir, stat, statfs } from "node:fs/promises";
import { dirname, join } from "node:path";
import { CHUNK_PATTERN } from "./chunk_writer.ts";

/** The history's need beside its disk's room, in bytes. */
export interface DiskRoom {
  /** Models × `HISTORY_MAX_BYTES`: what the chunks may take together. */
  need: number;
  /** Free on the file system of `HISTORY_DIR` (for an unprivileged user). */
  free: number;
  /** Chunks already in the recorders' folders: within the need, and no longer free. */
  held: number;
}

/**
 * The room for `dirs` (one recorder's folder each, bound to `maxBytes`) on the file system
 * holding them. The folders need not exist yet (a recorder makes its folder on its first
 * write): the nearest one above that does is asked.
 */
export async function diskRoomOf(dirs: readonly string[], maxBytes: number): Promise<DiskRoom> {
  let at = dirs[0];
  let fs = await statfs(at).catch(() => undefined);
  while (!fs && dirname(at) !== at) {
    at = dirname(at);
    fs = await statfs(at).catch(() => undefined);
  }
  let held = 0;
  for (const dir of dirs) held += await chunkBytesIn(dir);
  return {
    need: dirs.length * maxBytes,
    free: fs ? fs.bavail * fs.bsize : Number.POSITIVE_INFINITY,
    held,
  };
}

async function chunkBytesIn(dir: string): Promise<number> {
  const names = await readdir(dir).catch(() => [] as string[]);
  let bytes = 0;
  for (const name of names) {
    if (!CHUNK_PATTERN.test(name)) continue;
    bytes += await stat(join(dir, name)).then(
      (s) => s.size,
      () => 0,
    );
  }
  return bytes;
}
