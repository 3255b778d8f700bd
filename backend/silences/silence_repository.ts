// Stores silences and reads them back (lists, the engine's feed, the one an alert or its incident falls under), with postgres.js.

import type { Identity } from "../../contracts/auth.ts";
import type { Recurrence, Silence, SilenceState } from "../../contracts/silence.ts";
import { compileSilence, silenceCoversAll } from "../../contracts/silence_match.ts";
import { type CursorKey, encodeCursor } from "../alerts/_cursor.ts";
import type { NewAlert } from "../alerts/alert_types.ts";
import { unverified } from "../audit/actor.ts";
import { auditInsert } from "../audit/audit_repository.ts";
import type { Database } from "../db/database.ts";
import { dbErrorTranslator } from "../db/db_errors.ts";
import { parseNewSilence } from "./silence_schemas.ts";

export type SilenceRepository = ReturnType<typeof createSilenceRepository>;

interface SilenceRow {
  silence_id: string;
  stream_glob: string;
  sensor_globs: string[];
  starts_at: Date;
  ends_at: Date;
  recurrence: Recurrence | null;
  reason: string;
  created_by: string;
  created_at: Date;
  expired_at: Date | null;
  expired_by: string | null;
  expired_reason: string | null;
}

/** Where a silence stands at `now`: over once its end or its expiry passed. */
export function silenceState(
  s: { starts_at: Date; ends_at: Date; expired_at: Date | null },
  now: number,
): SilenceState {
  const end = Math.min(s.ends_at.getTime(), s.expired_at?.getTime() ?? Number.POSITIVE_INFINITY);
  if (end <= now) return "expired";
  return s.starts_at.getTime() > now ? "pending" : "active";
}

function toSilence(r: SilenceRow, now: number): Silence {
  return {
    silence_id: r.silence_id,
    matchers: { stream: r.stream_glob, sensors: r.sensor_globs },
    starts_at: r.starts_at.toISOString(),
    ends_at: r.ends_at.toISOString(),
    recurrence: r.recurrence,
    reason: r.reason,
    created_by: r.created_by,
    created_at: r.created_at.toISOString(),
    expired_at: r.expired_at?.toISOString() ?? null,
    expired_by: r.expired_by,
    expired_reason: r.expired_reason,
    state: silenceState(r, now),
  };
}

// A time as a row holds it (Date) or json_agg gave it (ISO text), as ISO text.
const isoOf = (t: Date | string) => new Date(t).toISOString();

/**
 * The first of `candidates` (ordered by preference) that holds at `at`, matches `stream` and
 * covers every one of `sensors`; `null` when none does.
 */
function firstCovering(
  candidates: SilenceRow[],
  stream: string,
  sensors: string[],
  at: Date,
): string | null {
  const atMs = at.getTime();
  for (const c of candidates) {
    const compiled = compileSilence({
      silence_id: c.silence_id,
      matchers: { stream: c.stream_glob, sensors: c.sensor_globs },
      starts_at: isoOf(c.starts_at),
      ends_at: isoOf(c.ends_at),
      expired_at: c.expired_at === null ? null : isoOf(c.expired_at),
      recurrence: c.recurrence,
    });
    if (silenceCoversAll(compiled, stream, sensors, atMs)) return c.silence_id;
  }
  return null;
}

/**
 * The silence repository over a postgres.js client; `now` is the clock states are judged by.
 * Silences are only ever inserted and expired (expired_* set once), never deleted.
 *
 * @example const silences = createSilenceRepository(db, Date.now); await silences.create(body);
 */
export function createSilenceRepository(db: Pick<Database, "sql" | "recover">, now: () => number) {
  const client = () => db.sql;
  const failed = dbErrorTranslator(db);
  // A silence's end: its `ends_at`, or its expiry when that came first.
  const end = (sql: Database["sql"]) =>
    sql`LEAST(ends_at, COALESCE(expired_at, 'infinity'::timestamptz))`;

  /** Validates `body` as `POST /api/v1/silences` does (400 naming the field) and stores it. */
  async function create(body: unknown, actor?: Identity): Promise<Silence> {
    const at = now();
    const s = parseNewSilence(body, at);
    const sql = client();
    const id = crypto.randomUUID();
    const audit = auditInsert(sql, {
      action: "silence.create",
      target: `silence:${id}`,
      actor: actor ?? unverified(s.created_by),
      at: new Date(at),
      detail: {
        matchers: s.matchers,
        starts_at: s.starts_at.toISOString(),
        ends_at: s.ends_at.toISOString(),
        recurrence: s.recurrence ?? null,
        reason: s.reason,
      },
    });
    const [row] = await sql<SilenceRow[]>`
      WITH inserted AS (
        INSERT INTO silence (silence_id, stream_glob, sensor_globs, starts_at, ends_at,
          recurrence, reason, created_by, created_at)
        VALUES (${id}, ${s.matchers.stream}, ${s.matchers.sensors}::text[],
          ${s.starts_at}, ${s.ends_at},
          ${s.recurrence ? JSON.stringify(s.recurrence) : null}::text::jsonb, ${s.reason},
          ${s.created_by}, ${new Date(at)})
        RETURNING *
      ), audited AS (${audit})
      SELECT * FROM inserted`.catch(failed);
    return toSilence(row, at);
  }

  /** One silence, or `undefined`. */
  async function get(silenceId: string): Promise<Silence | undefined> {
    const sql = client();
    const [row] = await sql<SilenceRow[]>`
      SELECT * FROM silence WHERE silence_id = ${silenceId}`.catch(failed);
    return row ? toSilence(row, now()) : undefined;
  }

  /** Silences newest first (by creation), optionally in one state, one page after `cursor`. */
  async function list(q: { state?: SilenceState; limit: number; cursor?: CursorKey }) {
    const sql = client();
    const at = new Date(now());
    const rows = await sql<SilenceRow[]>`
      SELECT * FROM silence WHERE true
      ${q.state === "expired" ? sql`AND ${end(sql)} <= ${at}` : sql``}
      ${q.state === "pending" ? sql`AND starts_at > ${at} AND ${end(sql)} > ${at}` : sql``}
      ${q.state === "active" ? sql`AND starts_at <= ${at} AND ${end(sql)} > ${at}` : sql``}
      ${q.cursor ? sql`AND (created_at, silence_id) < (${q.cursor.ts}, ${q.cursor.alertId}::uuid)` : sql``}
      ORDER BY created_at DESC, silence_id DESC
      LIMIT ${q.limit + 1}`.catch(failed);
    const page = rows.slice(0, q.limit);
    const last = page.at(-1);
    return {
      silences: page.map((r) => toSilence(r, at.getTime())),
      next_cursor:
        rows.length > q.limit && last
          ? encodeCursor({ ts: last.created_at, alertId: last.silence_id })
          : null,
    };
  }

  /**
   * The active silences that end first (`limit` of them, ending soonest first: those ending within
   * `endingWithinMs` lead), how many are active and how many of them end within `endingWithinMs`,
   * and every active recurring one (whether it holds now depends on its windows, judged by the
   * caller). What the console's banner shows, bounded however many silences there are.
   *
   * @example const { first, active } = await silences.activeByEnd({ limit: 13, endingWithinMs: 7_200_000 });
   */
  async function activeByEnd(q: { limit: number; endingWithinMs: number }) {
    const sql = client();
    const at = new Date(now());
    const soon = new Date(at.getTime() + q.endingWithinMs);
    const active = () => sql`starts_at <= ${at} AND ${end(sql)} > ${at}`;
    const [first, [counts], recurring] = await Promise.all([
      sql<SilenceRow[]>`
        SELECT * FROM silence WHERE ${active()}
        ORDER BY ${end(sql)} ASC, silence_id
        LIMIT ${q.limit}`,
      sql<{ active: number; ending_soon: number }[]>`
        SELECT count(*)::int AS active,
          (count(*) FILTER (WHERE ${end(sql)} <= ${soon}))::int AS ending_soon
        FROM silence WHERE ${active()}`,
      sql<SilenceRow[]>`
        SELECT * FROM silence WHERE ${active()} AND recurrence IS NOT NULL
        ORDER BY ${end(sql)} ASC, silence_id`,
    ]).catch(failed);
    const ms = at.getTime();
    return {
      first: first.map((r) => toSilence(r, ms)),
      active: counts.active,
      ending_soon: counts.ending_soon,
      recurring: recurring.map((r) => toSilence(r, ms)),
    };
  }

  /**
   * Expires a silence now: records who, when and why once. `changed: false` when it was already
   * over (expired or past its end): nothing is written then. `undefined` for an unknown id.
   */
  async function expire(
    silenceId: string,
    by: { by: string; reason?: string },
    actor?: Identity,
  ): Promise<{ changed: boolean; silence: Silence } | undefined> {
    const sql = client();
    const at = new Date(now());
    const audit = auditInsert(
      sql,
      {
        action: "silence.expire",
        target: `silence:${silenceId}`,
        actor: actor ?? unverified(by.by),
        at,
        detail: { reason: by.reason || null },
      },
      "updated",
    );
    const [updated] = await sql<SilenceRow[]>`
      WITH updated AS (
        UPDATE silence SET expired_at = ${at}, expired_by = ${by.by},
          expired_reason = ${by.reason || null}
        WHERE silence_id = ${silenceId} AND ${end(sql)} > ${at}
          -- Once: of two expiries at once, the one that waited for the row finds it expired
          -- (its guard alone passed again when its own time was the earlier).
          AND expired_at IS NULL
        RETURNING *
      ), audited AS (${audit})
      SELECT * FROM updated`.catch(failed);
    if (updated) return { changed: true, silence: toSilence(updated, at.getTime()) };
    const earlier = await get(silenceId);
    return earlier ? { changed: false, silence: earlier } : undefined;
  }

  /** Every silence not over yet, and those over for less than `recentMs`, by id. */
  async function effective(recentMs: number): Promise<Silence[]> {
    const sql = client();
    const at = now();
    const rows = await sql<SilenceRow[]>`
      SELECT * FROM silence WHERE ${end(sql)} > ${new Date(at - recentMs)}
      ORDER BY silence_id`.catch(failed);
    return rows.map((r) => toSilence(r, at));
  }

  /**
   * The silence an incident's alert falls under: one that holds at the alert's frame time, matches
   * its stream and covers every sensor the incident has flagged so far, this alert's included (the
   * one ending last; ties by id). `null` when none. Each alert is judged on its own, never by an
   * earlier alert's silence: a sensor joining outside the silence's scope, or the silence's end or
   * expiry, leaves the next alert uncovered, and the notifier tells of it (notify/README.md).
   */
  async function forIncidentAlert(a: {
    incidentId: string;
    streamId: string;
    at: Date;
    sensors: string[];
  }): Promise<string | null> {
    const sql = client();
    const [row] = await sql<{ sensors: string[] | null; candidates: SilenceRow[] | null }[]>`
      SELECT
        (SELECT array_agg(COALESCE(feature, 'feature_' || feature_idx)) FROM incident_sensor
          WHERE incident_id = ${a.incidentId}) AS sensors,
        (SELECT json_agg(s ORDER BY ${end(sql)} DESC, silence_id) FROM silence s
          WHERE starts_at <= ${a.at} AND ${end(sql)} > ${a.at}) AS candidates`.catch(failed);
    const sensors = [...new Set([...(row.sensors ?? []), ...a.sensors])];
    return firstCovering(row.candidates ?? [], a.streamId, sensors, a.at);
  }

  /**
   * The silence an alert without an incident (frame mode) falls under: one holding at its frame
   * time that matches its stream and covers every sensor it flagged (the one ending last; ties by
   * id). `null` when none.
   */
  async function forFrameAlert(a: {
    streamId: string;
    at: Date;
    sensors: string[];
  }): Promise<string | null> {
    const sql = client();
    const candidates = await sql<SilenceRow[]>`
      SELECT * FROM silence WHERE starts_at <= ${a.at} AND ${end(sql)} > ${a.at}
      ORDER BY ${end(sql)} DESC, silence_id`.catch(failed);
    return firstCovering(candidates, a.streamId, [...new Set(a.sensors)], a.at);
  }

  /** The silence an alert about to be stored falls under: {@link forIncidentAlert} or {@link forFrameAlert}. */
  function forAlert(alert: NewAlert): Promise<string | null> {
    if (!alert.incident) {
      return forFrameAlert({
        streamId: alert.stream_id,
        at: alert.frame_timestamp ?? alert.timestamp,
        sensors: alert.anomalous_features.map((f) => f.feature ?? `feature_${f.feature_idx}`),
      });
    }
    return forIncidentAlert({
      incidentId: alert.incident.incident_id,
      streamId: alert.stream_id,
      at: alert.frame_timestamp ?? alert.timestamp,
      sensors: alert.anomalous_features.map((f) => f.feature ?? `feature_${f.feature_idx}`),
    });
  }

  return {
    create,
    get,
    list,
    activeByEnd,
    expire,
    effective,
    forIncidentAlert,
    forFrameAlert,
    forAlert,
  };
}
