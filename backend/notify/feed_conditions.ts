// Conditions of the data feed seen on the engine (a stream gone silent, a running condition's sensor in doubt, the engine out of reach), recorded one row per episode for the notification routes.
import { randomUUID } from "node:crypto";
import type { Database } from "../db/database.ts";
import { isUnavailable } from "../db/db_errors.ts";

export const FEED_KINDS = ["stream_silent", "running_sensor_doubt", "engine_unreachable"] as const;
export type FeedKind = (typeof FEED_KINDS)[number];

/** One episode of a condition, as stored. */
export interface FeedCondition {
  condition_id: string;
  kind: FeedKind;
  /** The stream id, or the engine's URL (`engine_unreachable`). */
  subject: string;
  stream_id: string | null;
  /** The running condition's sensor (`running_sensor_doubt`). */
  sensor: string | null;
  /** Since when it holds: the stream's last accepted frame, the doubt's start, the first failed read. */
  since: Date;
  detail: Record<string, unknown>;
  opened_at: Date;
  ended_at: Date | null;
}

/** The most streams an engine lists as silent; a full list may leave some out. */
export const SILENT_LISTED_MAX = 256;

/**
 * What one read of the engine's `GET /stats` showed. `silent` and `doubts` absent: the engine
 * does not say (an earlier release, a replica that cannot tell yet), and nothing of that kind
 * is opened or ended on its word.
 */
export type FeedObservation =
  | {
      reachable: true;
      silent?: { stream_id: string; last_accepted_at: string }[];
      doubts?: { stream_id: string; sensor: string; since: string; in_range: number }[];
    }
  | {
      reachable: false;
      /** The first failed read in a row. */
      since: Date;
      reason: string;
    };

/** What an observation changed: the episodes it opened and those it ended. */
export interface FeedChanges {
  opened: FeedCondition[];
  ended: FeedCondition[];
}

/** A condition as one read shows it. */
type Seen = Pick<FeedCondition, "kind" | "subject" | "stream_id" | "sensor" | "since" | "detail">;

/**
 * The conditions' store. `observe` turns one read of the engine into episodes: a condition the
 * read shows and no open episode holds is opened (one open episode per kind and subject, whichever
 * backend saw it first); one whose `since` moved on (the stream sent again and went silent again
 * between two reads) ends and a new one opens; an open one the read no longer shows ends.
 *
 * @example const feed = createFeedConditions(database); await feed.observe(engineUrl, observation, new Date());
 */
export function createFeedConditions(db: Pick<Database, "sql" | "recover">) {
  const failed = (error: unknown): never => {
    if (isUnavailable(error)) db.recover();
    throw error;
  };

  async function open(seen: Seen, now: Date): Promise<FeedCondition | undefined> {
    const [row] = await db.sql<FeedCondition[]>`
      INSERT INTO feed_condition (condition_id, kind, subject, stream_id, sensor, since, detail,
        opened_at)
      VALUES (${randomUUID()}, ${seen.kind}, ${seen.subject}, ${seen.stream_id}, ${seen.sensor},
        ${seen.since}, ${db.sql.json(seen.detail as never)}, ${now})
      ON CONFLICT DO NOTHING
      RETURNING *`.catch(failed);
    return row;
  }

  /**
   * Ends the open episodes of `kind` (of `subject` only, when given) except those `keep` still
   * shows: its subject at the same `since`, or an earlier one (an engine restarted after a kill
   * -9 may remember a stream's last frame a few seconds short: the same episode, not a new one).
   */
  async function end(
    kind: FeedKind,
    keep: Seen[],
    now: Date,
    subject?: string,
  ): Promise<FeedCondition[]> {
    const subjects = keep.map((k) => k.subject);
    const sinces = keep.map((k) => k.since.toISOString());
    return await db.sql<FeedCondition[]>`
      UPDATE feed_condition c SET ended_at = ${now}
      WHERE c.kind = ${kind} AND c.ended_at IS NULL
        ${subject === undefined ? db.sql`` : db.sql`AND c.subject = ${subject}`}
        AND NOT EXISTS (SELECT 1 FROM unnest(${subjects}::text[], ${sinces}::timestamptz[])
          AS k(subject, since) WHERE k.subject = c.subject AND k.since <= c.since)
      RETURNING *`.catch(failed);
  }

  /** Opens what `seen` shows and no open episode holds, after ending the episodes it replaces. */
  async function sync(
    kind: FeedKind,
    seen: Seen[],
    now: Date,
    endMissing: boolean,
  ): Promise<FeedChanges> {
    const ended = endMissing
      ? await end(kind, seen, now)
      : // Only those whose `since` moved: the list may leave some out.
        (await Promise.all(seen.map((s) => end(kind, [s], now, s.subject)))).flat();
    const opened: FeedCondition[] = [];
    for (const s of seen) {
      const row = await open(s, now);
      if (row) opened.push(row);
    }
    return { opened, ended };
  }

  return {
    /** Records what one read of the engine at `engineUrl` showed at `now`. */
    async observe(engineUrl: string, o: FeedObservation, now: Date): Promise<FeedChanges> {
      const all: FeedChanges = { opened: [], ended: [] };
      const add = (c: FeedChanges) => {
        all.opened.push(...c.opened);
        all.ended.push(...c.ended);
      };
      const engine: Seen[] = o.reachable
        ? []
        : [
            {
              kind: "engine_unreachable",
              subject: engineUrl,
              stream_id: null,
              sensor: null,
              since: o.since,
              detail: { reason: o.reason },
            },
          ];
      // Reachable: its episode ends; out of reach: one opens, kept while it stays so (the
      // first failed read is the same for the whole run of failures).
      if (o.reachable)
        add({ opened: [], ended: await end("engine_unreachable", [], now, engineUrl) });
      else {
        const row = await open(engine[0], now);
        if (row) all.opened.push(row);
        return all;
      }
      if (o.silent) {
        const seen = o.silent.map(
          (s): Seen => ({
            kind: "stream_silent",
            subject: s.stream_id,
            stream_id: s.stream_id,
            sensor: null,
            since: new Date(s.last_accepted_at),
            detail: { last_accepted_at: s.last_accepted_at },
          }),
        );
        add(await sync("stream_silent", seen, now, o.silent.length < SILENT_LISTED_MAX));
      }
      if (o.doubts) {
        const seen = o.doubts.map(
          (d): Seen => ({
            kind: "running_sensor_doubt",
            subject: d.stream_id,
            stream_id: d.stream_id,
            sensor: d.sensor,
            since: new Date(d.since),
            detail: { sensor: d.sensor, in_range: d.in_range },
          }),
        );
        add(await sync("running_sensor_doubt", seen, now, true));
      }
      return all;
    },

    /** Whether an engine has been at work for this database: a condition or an alert is stored. */
    async engineKnown(): Promise<boolean> {
      const [row] = await db.sql<{ known: boolean }[]>`
        SELECT EXISTS (SELECT 1 FROM feed_condition) OR EXISTS (SELECT 1 FROM alert) AS known`.catch(
        failed,
      );
      return row.known;
    },

    /** Open episodes, oldest first. */
    async open(): Promise<FeedCondition[]> {
      return await db.sql<FeedCondition[]>`
        SELECT * FROM feed_condition WHERE ended_at IS NULL ORDER BY since, condition_id`.catch(
        failed,
      );
    },
  };
}

export type FeedConditions = ReturnType<typeof createFeedConditions>;
