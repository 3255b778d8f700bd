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

/**
 * The statement ending the open `stream_silent` episode of `streamId` at `at` (its routes hear the
 * end only if they heard the opening), to run inside a retirement's own statement: with `from`,
 * only when that CTE has a row (the retirement was recorded).
 *
 * @example sql`WITH ins AS (INSERT ... RETURNING *), e AS (${endStreamSilentEpisode(sql, id, at, "ins")}) SELECT * FROM ins`
 */
export function endStreamSilentEpisode(
  sql: Database["sql"],
  streamId: string,
  at: Date,
  from: string,
) {
  // The end says who retired the stream and why (its message words it so, not as "sending again").
  return sql`
    UPDATE feed_condition c SET ended_at = ${at},
      detail = c.detail || jsonb_build_object('retired_by', r.retired_by, 'retire_reason', r.reason)
    FROM ${sql(from)} r
    WHERE c.kind = 'stream_silent' AND c.subject = ${streamId} AND c.ended_at IS NULL
    RETURNING c.condition_id`;
}

/** What an observation changed: the episodes it opened and those it ended. */
export interface FeedChanges {
  opened: FeedCondition[];
  ended: FeedCondition[];
}

/** A condition as one read shows it. */
type Seen = Pick<FeedCondition, "kind" | "subject" | "stream_id" | "sensor" | "since" | "detail">;

/**
 * The conditions' store. `observe` turns one read of the engine into episodes:
 *
 * - A condition the read shows and no open episode holds opens one (one open episode per kind
 *   and subject, whichever backend saw it first); one it shows again is the same episode (its
 *   `seen_at` moves on).
 * - A silent stream whose `since` moved on (it sent, then went silent again between two reads)
 *   ends its episode and opens another; one whose `since` moved back (an engine killed and
 *   restarted remembers a few seconds short) is the same. A running condition's doubt is the same
 *   episode while its stream and sensor are shown, whatever its `since` (a restarted engine
 *   finds the doubt again, later).
 * - An episode ends once reads have not shown it for `graceMs`: an engine restarting, or a
 *   replica not yet reading its board, shows empty lists for a moment. A full list of silent
 *   streams ends nothing it leaves out.
 * - A silent stream retired by an operator (`../streams/`) opens nothing while its retirement is
 *   in force and it has sent nothing since (an open episode of it ends); the retirement ends by
 *   itself once the stream sent again, and the next silence is an episode as any.
 * - The engine is out of reach only while no backend reached it since this one's reads began to
 *   fail (`feed_engine`), so backends that disagree do not page open, resolved, open...; any read
 *   that reaches it ends the episode.
 *
 * @example const feed = createFeedConditions(database, { graceMs: 60_000 }); await feed.observe(engineUrl, observation, new Date());
 */
export function createFeedConditions(
  db: Pick<Database, "sql" | "recover">,
  options: { graceMs: number },
) {
  const failed = (error: unknown): never => {
    if (isUnavailable(error)) db.recover();
    throw error;
  };
  const sql = () => db.sql;
  /** A statement's rows as a plain array (a failure rethrown after `recover` when unavailable). */
  const rows = async <T>(query: PromiseLike<readonly T[]>): Promise<T[]> => {
    try {
      return [...(await query)];
    } catch (error) {
      return failed(error);
    }
  };

  /** Opens an episode for each of `seen` that none holds open; resolves with those opened. */
  async function open(kind: FeedKind, seen: Seen[], now: Date): Promise<FeedCondition[]> {
    if (seen.length === 0) return [];
    // In subject order: each row's insert takes its stream's lock (migration 0027), so two
    // backends inserting the same streams take them in the same order and never deadlock.
    const sorted = [...seen].sort((a, b) =>
      a.subject < b.subject ? -1 : a.subject > b.subject ? 1 : 0,
    );
    const col = <T>(pick: (s: Seen) => T) => sorted.map(pick);
    return rows(sql()<FeedCondition[]>`
      INSERT INTO feed_condition (condition_id, kind, subject, stream_id, sensor, since, detail,
        opened_at, seen_at)
      SELECT k.id, ${kind}, k.subject, k.stream_id, k.sensor, k.since, k.detail::jsonb, ${now},
        ${now}
      FROM unnest(${sorted.map(() => randomUUID())}::uuid[], ${col((s) => s.subject)}::text[],
        ${col((s) => s.stream_id)}::text[], ${col((s) => s.sensor)}::text[],
        ${col((s) => s.since.toISOString())}::timestamptz[],
        ${col((s) => JSON.stringify(s.detail))}::text[])
        AS k(id, subject, stream_id, sensor, since, detail)
      ORDER BY k.subject
      ON CONFLICT DO NOTHING
      RETURNING *`);
  }

  /** Moves `seen_at` of the open episodes of `kind` the read showed. */
  async function touch(kind: FeedKind, seen: Seen[], now: Date): Promise<void> {
    if (seen.length === 0) return;
    await sql()`
      UPDATE feed_condition SET seen_at = ${now}
      WHERE kind = ${kind} AND ended_at IS NULL
        AND subject = ANY(${seen.map((s) => s.subject)}::text[])`.catch(failed);
  }

  /** Ends the silent streams' episodes whose stream the read shows silent since later. */
  async function movedOn(seen: Seen[], now: Date): Promise<FeedCondition[]> {
    if (seen.length === 0) return [];
    return rows(sql()<FeedCondition[]>`
      UPDATE feed_condition c SET ended_at = ${now}
      FROM unnest(${seen.map((s) => s.subject)}::text[],
        ${seen.map((s) => s.since.toISOString())}::timestamptz[]) AS k(subject, since)
      WHERE c.kind = 'stream_silent' AND c.ended_at IS NULL AND c.subject = k.subject
        AND k.since > c.since
      RETURNING c.*`);
  }

  /** Ends the open episodes of `kind` the read did not show, unseen for `graceMs`. */
  async function unseen(kind: FeedKind, seen: Seen[], now: Date): Promise<FeedCondition[]> {
    return rows(sql()<FeedCondition[]>`
      UPDATE feed_condition SET ended_at = ${now}
      WHERE kind = ${kind} AND ended_at IS NULL
        AND seen_at < ${new Date(now.getTime() - options.graceMs)}
        AND NOT (subject = ANY(${seen.map((s) => s.subject)}::text[]))
      RETURNING *`);
  }

  /**
   * Sets apart the silent streams a retirement in force covers (silent since no later than the
   * last frame the engine listed when it was made, or than it was made: a line taken out of service), ending their open episodes; resolves with the rest. A
   * retirement ends by itself (`ended_by` null) once the stream sent again: shown silent since a
   * later frame, or left out of a complete list for `graceMs` after a read listed it.
   */
  async function retired(
    seen: Seen[],
    now: Date,
    complete: boolean,
  ): Promise<{ rest: Seen[]; ended: FeedCondition[] }> {
    const subjects = seen.map((s) => s.subject);
    const sinces = seen.map((s) => s.since.toISOString());
    await sql()`
      UPDATE stream_retirement r SET ended_at = ${now}, ended_by = NULL, end_reason = 'sent again'
      FROM unnest(${subjects}::text[], ${sinces}::timestamptz[]) AS k(subject, since)
      WHERE r.ended_at IS NULL AND r.stream_id = k.subject
        AND k.since > COALESCE(r.last_accepted_at, r.retired_at)`.catch(failed);
    if (complete) {
      await sql()`
        UPDATE stream_retirement SET ended_at = ${now}, ended_by = NULL, end_reason = 'sent again'
        WHERE ended_at IS NULL AND listed_at < ${new Date(now.getTime() - options.graceMs)}
          AND NOT (stream_id = ANY(${subjects}::text[]))`.catch(failed);
    }
    const held = await rows(sql()<{ stream_id: string }[]>`
      UPDATE stream_retirement SET listed_at = ${now}
      WHERE ended_at IS NULL AND stream_id = ANY(${subjects}::text[])
      RETURNING stream_id`);
    if (held.length === 0) return { rest: seen, ended: [] };
    const out = new Set(held.map((h) => h.stream_id));
    const ended = await rows(sql()<FeedCondition[]>`
      UPDATE feed_condition c SET ended_at = ${now},
        detail = c.detail || jsonb_build_object('retired_by', r.retired_by, 'retire_reason', r.reason)
      FROM stream_retirement r
      WHERE c.kind = 'stream_silent' AND c.ended_at IS NULL AND r.ended_at IS NULL
        AND r.stream_id = c.subject AND c.subject = ANY(${[...out]}::text[])
      RETURNING c.*`);
    return { rest: seen.filter((s) => !out.has(s.subject)), ended };
  }

  /** Records one read's list of `kind`; `complete`: what it leaves out is not shown (not cut). */
  async function sync(
    kind: FeedKind,
    seen: Seen[],
    now: Date,
    complete: boolean,
  ): Promise<FeedChanges> {
    const ended = kind === "stream_silent" ? await movedOn(seen, now) : [];
    await touch(kind, seen, now);
    const opened = await open(kind, seen, now);
    if (complete) ended.push(...(await unseen(kind, seen, now)));
    return { opened, ended };
  }

  return {
    /** Records what one read of the engine at `engineUrl` showed at `now`. */
    async observe(engineUrl: string, o: FeedObservation, now: Date): Promise<FeedChanges> {
      if (!o.reachable) {
        const [row] = await sql()<FeedCondition[]>`
          INSERT INTO feed_condition (condition_id, kind, subject, stream_id, sensor, since,
            detail, opened_at, seen_at)
          SELECT ${randomUUID()}, 'engine_unreachable', ${engineUrl}, NULL, NULL, ${o.since},
            ${sql().json({ reason: o.reason })}, ${now}, ${now}
          WHERE NOT EXISTS (SELECT 1 FROM feed_engine e
            WHERE e.engine_url = ${engineUrl} AND e.reached_at > ${o.since})
          ON CONFLICT DO NOTHING
          RETURNING *`.catch(failed);
        return { opened: row ? [row] : [], ended: [] };
      }
      await sql()`
        INSERT INTO feed_engine (engine_url, reached_at) VALUES (${engineUrl}, ${now})
        ON CONFLICT (engine_url) DO UPDATE
          SET reached_at = GREATEST(feed_engine.reached_at, EXCLUDED.reached_at)`.catch(failed);
      const all: FeedChanges = {
        opened: [],
        ended: await rows(sql()<FeedCondition[]>`
          UPDATE feed_condition SET ended_at = ${now}
          WHERE kind = 'engine_unreachable' AND subject = ${engineUrl} AND ended_at IS NULL
          RETURNING *`),
      };
      const add = (c: FeedChanges) => {
        all.opened.push(...c.opened);
        all.ended.push(...c.ended);
      };
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
        const complete = o.silent.length < SILENT_LISTED_MAX;
        const { rest, ended } = await retired(seen, now, complete);
        add({ opened: [], ended });
        add(await sync("stream_silent", rest, now, complete));
      }
      if (o.doubts) {
        const seen = o.doubts.map(
          (d): Seen => ({
            kind: "running_sensor_doubt",
            // Stream ids hold no `/`: one subject per stream and sensor.
            subject: `${d.stream_id}/${d.sensor}`,
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

    /** Whether an engine has been at work for this database: one was reached, or an alert is stored. */
    async engineKnown(): Promise<boolean> {
      const [row] = await sql()<{ known: boolean }[]>`
        SELECT EXISTS (SELECT 1 FROM feed_engine) OR EXISTS (SELECT 1 FROM alert) AS known`.catch(
        failed,
      );
      return row.known;
    },
  };
}

export type FeedConditions = ReturnType<typeof createFeedConditions>;
