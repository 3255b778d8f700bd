// One retraining of a model at a time in a registry folder: a lock file naming the process that holds it.

import { open, readFile, rm, stat } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { processRunning, processStartedAt } from "../../contracts/process_running.ts";

/** The lock's file in the model's registry folder (the registry reads only version folders there). */
export const LOCK_FILE = ".retrain.lock";

/**
 * A lock file that cannot be read as a holder (a crash between creating and writing it) is taken
 * as left behind once it is this old; younger, its writer may still be filling it in.
 */
const UNREADABLE_STALE_MS = 10_000;

/** Who holds a model's retraining lock. */
interface Holder {
  pid: number;
  /** When the process started (Linux), so that a pid given to another process is no holder. */
  started?: string;
  host: string;
  at: string;
}

/** Another retraining of the same model runs: the message names it and what to do. */
export class RetrainLockedError extends Error {
  override name = "RetrainLockedError";
}

async function holderOf(path: string): Promise<Holder | undefined> {
  try {
    const held = JSON.parse(await readFile(path, "utf8")) as Partial<Holder>;
    if (typeof held.pid === "number" && typeof held.host === "string") {
      return {
        pid: held.pid,
        ...(typeof held.started === "string" ? { started: held.started } : {}),
        host: held.host,
        at: String(held.at),
      };
    }
  } catch {}
  return undefined;
}

/**
 * Takes `model`'s retraining lock in `registryDir` and returns its release. Two runs of one model
 * at once (a person's `npm run retrain` beside the engine's scheduled or asked-for run) would each
 * judge their candidate against a pointer the other moves, and one's report would end up saying
 * the version that serves was held. A lock whose holder is gone (killed with `kill -9`, the
 * machine restarted) is taken over: its process no longer runs on this host. One held from
 * another host (a shared folder) is not judged: the error names the file to remove. A model with
 * no folder has nothing to lock; the run says what is missing.
 */
export async function lockRetraining(
  registryDir: string,
  model: string,
): Promise<() => Promise<void>> {
  const path = join(registryDir, model, LOCK_FILE);
  const me: Holder = {
    pid: process.pid,
    ...(processStartedAt(process.pid) ? { started: processStartedAt(process.pid) } : {}),
    host: hostname(),
    at: new Date().toISOString(),
  };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const file = await open(path, "wx");
      try {
        await file.writeFile(`${JSON.stringify(me)}\n`);
        await file.sync();
      } finally {
        await file.close();
      }
      return () => rm(path, { force: true });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return async () => {};
      if (code !== "EEXIST") throw error;
    }
    const held = await holderOf(path);
    if (held === undefined) {
      const age = await stat(path).then(
        (s) => Date.now() - s.mtimeMs,
        () => Number.POSITIVE_INFINITY,
      );
      if (age < UNREADABLE_STALE_MS) {
        throw new RetrainLockedError(
          `a retraining of ${model} is starting (${path} was just made); try again in a moment`,
        );
      }
    } else if (held.host !== me.host) {
      throw new RetrainLockedError(
        `a retraining of ${model} is running on ${held.host} (pid ${held.pid}, since ${held.at}); if it is not, remove ${path}`,
      );
    } else if (processRunning(held.pid, held.started)) {
      throw new RetrainLockedError(
        `a retraining of ${model} is running (pid ${held.pid}, since ${held.at}); wait for it to end`,
      );
    }
    // Left by a run that is gone: taken over (a rival doing the same makes `wx` fail again).
    await rm(path, { force: true });
  }
  throw new RetrainLockedError(`a retraining of ${model} could not take ${path}; try again`);
}
