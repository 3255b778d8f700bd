// A lock file naming the process that holds a folder: taken whole or not at all, taken over from a process that is gone.
import { open, readFile, rm } from "node:fs/promises";
import { processRunning, processStartedAt } from "./process_running.ts";

/**
 * Takes the lock file at `path` for this process: created exclusively, holding this process's
 * pid and start time. A lock whose process is gone (killed with `kill -9`, a pid reused after a
 * restart) is taken over; one held by a running process throws `held(pid)`. Resolves with the
 * release, which removes the file. This process's own lock (reopened in a test) is taken over.
 *
 * @example const release = await takeLockFile(".data/backend.lock", (pid) => new Error(`in use by ${pid}`));
 */
export async function takeLockFile(
  path: string,
  held: (pid: number) => Error,
): Promise<() => Promise<void>> {
  const release = () => rm(path, { force: true });
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await open(path, "wx");
      try {
        await handle.writeFile(`${process.pid} ${processStartedAt(process.pid) ?? ""}\n`);
      } finally {
        await handle.close();
      }
      return release;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    const [holder, started] = (await readFile(path, "utf8").catch(() => "")).trim().split(" ");
    const pid = Number(holder);
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processRunning(pid, started)) {
      throw held(pid);
    }
    await rm(path, { force: true });
  }
  throw new Error(`the lock ${path} could not be taken`);
}
