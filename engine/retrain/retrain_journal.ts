// The single process's retraining schedule and last runs, kept in DATA_DIR: a restart goes on with the schedule and still shows how the last runs went.
import { readFile } from "node:fs/promises";
import * as v from "valibot";
import { type RetrainRun, retrainRunSchema } from "../../contracts/models_api.ts";
import type { Logger } from "../../telemetry/logger.ts";
import { writeFileAtomic } from "../_write_atomic.ts";

/** A model's last run and last promoting run, as `GET /models` shows them. */
export interface SavedRuns {
  last?: RetrainRun;
  last_promoted?: RetrainRun;
}

/** What the journal holds. */
export interface SavedRetraining {
  /**
   * When the schedule's clock started: the end of the last round, or, before any round, when
   * rounds were first on. The next round is due `RETRAIN_EVERY_H` after it, across restarts.
   */
  since: string | null;
  models: Record<string, SavedRuns>;
}

const savedRetrainingSchema = v.object({
  since: v.nullable(v.pipe(v.string(), v.isoTimestamp())),
  models: v.record(
    v.string(),
    v.object({
      last: v.optional(retrainRunSchema),
      last_promoted: v.optional(retrainRunSchema),
    }),
  ),
});

/** Where the scheduler keeps what must outlive the process. */
export interface RetrainJournal {
  /** The saved state; undefined when there is none (or it cannot be read: said in the log). */
  load(): Promise<SavedRetraining | undefined>;
  /** Replaces the saved state whole (a crash leaves the old one or the new, never a mix). */
  save(state: SavedRetraining): Promise<void>;
}

/**
 * The journal as one JSON file at `path` (`DATA_DIR/retraining.json`). An unreadable file is not
 * fatal: the schedule starts afresh, which is what an engine without one did, and the log says so.
 */
export function fileRetrainJournal(path: string, log: Logger): RetrainJournal {
  return {
    async load() {
      let text: string;
      try {
        text = await readFile(path, "utf8");
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
        log.warn("retraining journal cannot be read; the schedule starts afresh", {
          path,
          error: (error as Error).message,
        });
        return undefined;
      }
      try {
        return v.parse(savedRetrainingSchema, JSON.parse(text));
      } catch (error) {
        log.warn("retraining journal is not valid; the schedule starts afresh", {
          path,
          error: (error as Error).message,
        });
        return undefined;
      }
    },
    save: (state) => writeFileAtomic(path, `${JSON.stringify(state)}\n`),
  };
}
