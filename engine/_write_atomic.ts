// Replaces a file whole, so a reader (or the next start after a crash) sees the old content or the new, never a mix.
import { randomUUID } from "node:crypto";
import { open, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/**
 * Writes `data` to a temporary file beside `path` and renames it over `path`. `durable` (the
 * default) also fsyncs the file before the rename and the folder after it, so the new content
 * survives a power cut, not only a crash. A step that fails (a full disk) leaves no temporary
 * file behind: a writer retried every second must not fill the folder with them.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  { durable = true }: { durable?: boolean } = {},
): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${randomUUID()}.tmp`);
  try {
    const handle = await open(tmp, "w");
    try {
      await handle.writeFile(data);
      if (durable) await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
  } catch (error) {
    await rm(tmp, { force: true }).catch(() => {});
    throw error;
  }
  if (durable) await syncDir(dir);
}

/** Fsyncs a folder, so that a rename or a new file in it is on disk. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
