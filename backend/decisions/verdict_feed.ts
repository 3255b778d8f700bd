// The current verdict of every judged incident, read for the engine's feed, with postgres.js.
import type { VerdictFeed } from "../../contracts/verdict_feed.ts";
import type { Database } from "../db/database.ts";
import { dbErrorTranslator } from "../db/db_errors.ts";

export type VerdictFeedEntry = VerdictFeed["verdicts"][number];

/**
 * One entry per incident with a verdict: its latest (highest `verdict_id`), ordered by incident
 * id so the same verdicts always serialise the same. `since`: only incidents started then or later.
 */
export async function currentVerdicts(
  db: Pick<Database, "sql" | "recover">,
  since?: Date,
): Promise<VerdictFeedEntry[]> {
  const sql = db.sql;
  const rows = await sql<
    { incident_id: string; stream_id: string; verdict: VerdictFeedEntry["verdict"]; at: Date }[]
  >`
    SELECT DISTINCT ON (w.incident_id) w.incident_id, i.stream_id, w.verdict, w.given_at AS at
    FROM incident_verdict w JOIN incident i ON i.incident_id = w.incident_id
    ${since ? sql`WHERE i.started_at >= ${since}` : sql``}
    ORDER BY w.incident_id, w.verdict_id DESC`.catch(dbErrorTranslator(db));
  return rows.map((r) => ({
    incident_id: r.incident_id,
    stream_id: r.stream_id,
    verdict: r.verdict,
    at: r.at.toISOString(),
  }));
}

/**
 * What the whole feed's content depends on, in one indexed aggregate: the newest verdict's id and
 * how many verdicts there are. Verdicts are only ever added (superseded, never changed or
 * deleted; an incident with one is never pruned), so any change of the feed moves one of them.
 * Read before the feed itself, an ETag from it can only lag the content it labels, never claim a
 * newer one: a reader holding it is at worst sent the feed again.
 */
export async function verdictFeedVersion(db: Pick<Database, "sql" | "recover">): Promise<string> {
  const sql = db.sql;
  const [row] = await sql<{ last: string; n: string }[]>`
    SELECT coalesce(max(verdict_id), 0)::text AS last, count(*)::text AS n
    FROM incident_verdict`.catch(dbErrorTranslator(db));
  return `${row.last}-${row.n}`;
}
