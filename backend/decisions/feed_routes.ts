// What the engine pulls of people's decisions: the silences in force and the incidents' verdicts, with ETags.
import { Hono } from "hono";
import * as v from "valibot";
import { parseQuery, timeParam } from "../alerts/_query_params.ts";
import type { Database } from "../db/database.ts";
import type { SilenceRepository } from "../silences/silence_repository.ts";
import { etaggedJson, etagOf, notModified } from "./etag.ts";
import { currentVerdicts, verdictFeedVersion } from "./verdict_feed.ts";

export interface DecisionFeedOptions {
  silences: SilenceRepository;
  database: Pick<Database, "sql" | "recover">;
  now: () => number;
}

/** Silences over for less than this are still served: a reader that records late still sees them. */
export const RECENTLY_OVER_MS = 86_400_000;

const verdictQuerySchema = v.object({ since: v.optional(timeParam) });

/**
 * Mounted under `/api/v1` (before the silence routes, whose `/silences/:id` would take
 * `effective`): `GET /silences/effective` → `{as_of, silences}` (active, pending, and over within
 * the last day), `GET /verdicts[?since=]` → `{as_of, verdicts}` (the current verdict per judged
 * incident). Both answer `304` to an `If-None-Match` naming their current ETag.
 */
export function decisionFeedRoutes(options: DecisionFeedOptions): Hono {
  const { silences, database, now } = options;
  const app = new Hono();

  app.get("/silences/effective", async function effectiveSilences(c) {
    const at = new Date(now());
    return etaggedJson(c, "silences", await silences.effective(RECENTLY_OVER_MS), at);
  });

  app.get("/verdicts", async function verdictFeed(c) {
    const q = parseQuery(verdictQuerySchema, c.req.query());
    const at = new Date(now());
    if (q.since) return etaggedJson(c, "verdicts", await currentVerdicts(database, q.since), at);
    // The whole feed, what every engine polls: its ETag comes from one aggregate, so an unchanged
    // feed answers 304 without reading every verdict ever given (0.65 s at 100,000 of them).
    const etag = await etagOf(`verdicts:${await verdictFeedVersion(database)}`);
    if (notModified(c, etag)) return c.body(null, 304);
    return etaggedJson(c, "verdicts", await currentVerdicts(database), at, etag);
  });

  return app;
}
