// A lock file naming the process that holds a folder: taken whole or not at all, taken over from a process that is gone.
import { link, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { processRunning, processStartedAt } from "./process_running.ts";

// How a lock is taken over (`kill -9` leaves it behind), so that processes starting at once on
// one stale lock get exactly one owner, with only files (Node and Deno alike):
//
// - Every file here is created whole: written under a unique temporary name, then `link`ed into
//   place (fails if the name exists) or `rename`d over it, so no reader sees a half-written one.
//   Each lock names its process and a random token, so a lock's text is never written twice.
// - A stale lock is never deleted, only replaced in one `rename`, by the one process holding the
//   takeover marker for that lock's text (`<lock>.takeover-<hash of the text>.1`, created
//   exclusively), after re-reading under the marker that the lock still has that text. Everyone
//   else sees the lock, or a live taker's marker, and is refused naming that process.
// - A marker left by a taker killed mid-takeover is not deleted either: the next taker passes it
//   and takes the next level (`.2`, ...). Deleting it would race: two takers could each delete
//   what they think is the dead one's marker, the second deleting the first's fresh one.
// - Markers of a text are deleted only once the lock no longer has that text (by a taker that
//   replaced it, or found it replaced), and a text never comes back. So two takers of one text
//   never both hold a marker while the lock has it: the later one either found the earlier one's
//   marker (live: refused; dead: it died before replacing the lock, or after, when the lock's
//   text changed) or created its level after a deletion, which came after the text changed.

/** Takeover markers one takeover may pass: each was left by a taker killed mid-takeover. */
const MAX_TAKEOVER_LEVELS = 32;

/**
 * Takes the lock file at `path` for this process: created exclusively, holding this process's
 * pid and start time. A lock whose process is gone (killed with `kill -9`, a pid reused after a
 * restart) is taken over, by one process when several start at once; one held by a running
 * process (or being taken over by one) throws `held(pid)`. Resolves with the release, which
 * removes the file. This process's own lock (reopened in a test) is taken over.
 *
 * @example const release = await takeLockFile(".data/backend.lock", (pid) => new Error(`in use by ${pid}`));
 */
export async function takeLockFile(
  path: string,
  held: (pid: number) => Error,
): Promise<() => Promise<void>> {
  const mine = `${process.pid} ${processStartedAt(process.pid) ?? ""} ${crypto.randomUUID()}\n`;
  const release = function releaseLockFile() {
    return rm(path, { force: true });
  };
  for (let attempt = 0; attempt < 3; attempt++) {
    if (await createWhole(path, mine)) return release;
    const seen = await readIfThere(path);
    if (seen === undefined) continue; // released since
    const owner = runningHolder(seen, { ownIsGone: true });
    if (owner !== undefined) throw held(owner);
    if (await takeOver(path, seen, mine, held)) return release;
  }
  throw new Error(`the lock ${path} could not be taken`);
}

/** The `level`th takeover marker of the lock at `path` while it reads `text`. */
export async function takeoverMarker(path: string, text: string, level: number): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  const hash = Array.from(new Uint8Array(digest).slice(0, 8), (byte) =>
    byte.toString(16).padStart(2, "0"),
  ).join("");
  return `${path}.takeover-${hash}.${level}`;
}

/**
 * Replaces the stale lock at `path` reading `seen` with `mine` under a takeover marker: true
 * when done, false when the lock changed meanwhile (the caller looks again).
 */
async function takeOver(
  path: string,
  seen: string,
  mine: string,
  held: (pid: number) => Error,
): Promise<boolean> {
  let level = 1;
  for (let tries = 0; level <= MAX_TAKEOVER_LEVELS && tries < 3 * MAX_TAKEOVER_LEVELS; tries++) {
    const marker = await takeoverMarker(path, seen, level);
    if (await createWhole(marker, mine)) {
      return await underMarker(path, seen, mine, marker, level);
    }
    const taker = await readIfThere(marker);
    if (taker === undefined) continue; // its taker finished since: try the same level again
    const pid = runningHolder(taker, { ownIsGone: false });
    if (pid !== undefined) {
      // A live taker replaces the lock unless it was replaced before its marker was made (the
      // marker of a taker that then found the lock changed): then the owner is someone else.
      if ((await readIfThere(path)) !== seen) return false;
      throw held(pid);
    }
    level++; // its taker was killed mid-takeover
  }
  throw new Error(
    `the lock ${path} could not be taken: remove ${path} and ${path}.takeover-* if no process uses it`,
  );
}

async function underMarker(
  path: string,
  seen: string,
  mine: string,
  marker: string,
  level: number,
): Promise<boolean> {
  try {
    const now = await readIfThere(path);
    if (now !== seen) {
      // The lock's text changed, for good: its markers go (see the note at the top).
      await removeMarkers(path, seen, level);
      return false;
    }
    if (runningHolder(now, { ownIsGone: true }) !== undefined) {
      await rm(marker, { force: true });
      return false;
    }
    await writeWhole(path, mine, rename);
  } catch (error) {
    await rm(marker, { force: true });
    throw error;
  }
  // Every marker of this lock is now for a text it no longer has: this takeover's, and any left
  // by takers killed mid-takeover of an earlier text.
  const prefix = `${basename(path)}.takeover-`;
  for (const name of await readdir(dirname(path))) {
    if (name.startsWith(prefix) && /^[0-9a-f]{16}\.\d+$/.test(name.slice(prefix.length))) {
      await rm(join(dirname(path), name), { force: true });
    }
  }
  return true;
}

async function removeMarkers(path: string, text: string, levels: number): Promise<void> {
  for (let level = levels; level >= 1; level--) {
    await rm(await takeoverMarker(path, text, level), { force: true });
  }
}

/** The pid of the running process `text` (a lock's or a marker's) names, or undefined. */
function runningHolder(text: string, { ownIsGone }: { ownIsGone: boolean }): number | undefined {
  const [holder, started] = text.trim().split(" ");
  const pid = Number(holder);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  if (pid === process.pid) return ownIsGone ? undefined : pid;
  return processRunning(pid, started) ? pid : undefined;
}

async function readIfThere(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/** Creates `path` holding `text`, whole: false when it exists. */
function createWhole(path: string, text: string): Promise<boolean> {
  return writeWhole(path, text, async (temporary, target) => {
    try {
      await link(temporary, target);
      return true;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "EEXIST") return false;
      if (!NO_HARD_LINKS.has(code ?? "")) throw error;
    }
    // A folder without hard links (some network and host-shared volumes): created exclusively,
    // then written. Another process starting in that instant may read it empty and take it over,
    // the one race left there; refusing to start at all would be worse.
    try {
      await writeFile(target, text, { flag: "wx" });
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
      throw error;
    }
  });
}

/** What `link` answers on a file system that has no hard links. */
const NO_HARD_LINKS = new Set(["EPERM", "ENOTSUP", "EOPNOTSUPP", "ENOSYS"]);

/** Writes `text` under a temporary name beside `path`, then puts it in place with `place`. */
async function writeWhole<T>(
  path: string,
  text: string,
  place: (temporary: string, target: string) => Promise<T>,
): Promise<T> {
  const temporary = join(dirname(path), `.${basename(path)}.${crypto.randomUUID()}.tmp`);
  await writeFile(temporary, text, { flag: "wx" });
  try {
    return await place(temporary, path);
  } finally {
    await rm(temporary, { force: true });
  }
}
