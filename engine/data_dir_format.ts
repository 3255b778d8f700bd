// DATA_DIR says which layout of its files wrote it, so an older engine refuses a folder a newer one laid out instead of misreading it.
import { randomUUID } from "node:crypto";
import { mkdir, open, readFile, rename } from "node:fs/promises";
import { join } from "node:path";

/**
 * The layout this engine reads and writes in DATA_DIR (incident states, the alert outbox, the
 * decisions copy, the retraining journal, the training history's default folder). A release that
 * changes how one of them is read raises it, and moves older folders forward at start.
 */
export const DATA_DIR_FORMAT = 1;

/** The marker's file name in DATA_DIR. */
export const FORMAT_FILE = "format.json";

/** DATA_DIR was laid out by a newer engine, or its marker cannot be read. */
export class DataDirFormatError extends Error {
  override name = "DataDirFormatError";
}

/**
 * Checks `dir`'s marker against {@link DATA_DIR_FORMAT} and writes it where there is none (a new
 * folder, or one an earlier release kept: its files are read as this layout, legacy ones moved at
 * start). Written to a temporary file, synced and renamed, so a crash leaves the old marker or the
 * new one. Throws a {@link DataDirFormatError} naming the folder when a newer engine wrote it or the
 * marker is not one: starting on it could misread what a newer release kept there.
 */
export async function claimDataDirFormat(dir: string): Promise<void> {
  const path = join(dir, FORMAT_FILE);
  let text: string | undefined;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
      throw new DataDirFormatError(`cannot read ${path}: ${(error as Error).message}`);
    }
  }
  if (text === undefined) {
    await writeMarker(dir, path);
    return;
  }
  const format = formatIn(text);
  if (format === undefined) {
    throw new DataDirFormatError(
      `${path} is not a DATA_DIR format marker (expected {"format": N}); restore it, or remove it if this folder was only ever used by this release`,
    );
  }
  if (format > DATA_DIR_FORMAT) {
    throw new DataDirFormatError(
      `'DATA_DIR' ${dir} was laid out by a newer engine (format ${format}; this one reads ${DATA_DIR_FORMAT}) and would be misread: run that release again, or give this one another DATA_DIR`,
    );
  }
}

/** The `format` of a marker's text, or `undefined` when it is none. */
function formatIn(text: string): number | undefined {
  try {
    const parsed: unknown = JSON.parse(text);
    const format = (parsed as { format?: unknown } | null)?.format;
    return Number.isInteger(format) && (format as number) >= 1 ? (format as number) : undefined;
  } catch {
    return undefined;
  }
}

async function writeMarker(dir: string, path: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  // A name of its own: workers sharing a volume may claim it at once, each as PID 1 in its
  // container; both write the same marker, and each rename replaces it whole.
  const temporary = `${path}.${randomUUID()}.tmp`;
  const handle = await open(temporary, "w");
  try {
    await handle.writeFile(`${JSON.stringify({ format: DATA_DIR_FORMAT })}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporary, path);
}
