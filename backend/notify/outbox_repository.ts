// The notification outbox in PostgreSQL: planning stored incident events into messages, claiming, and recording outcomes.
import type { Database } from "../db/database.ts";
import { isUnavailable } from "../db/db_errors.ts";
import type { FeedCondition } from "./feed_conditions.ts";
import type { IncidentSnapshot, OutboxEvent } from "./notification_payload.ts";
import type { IncidentKind } from "./notify_config.ts";

/** A stored incident event the notifier has not planned yet, with what matching and bodies need. */
export interface UnplannedEvent {
  alert_id: string;
  event: "opened" | "updated" | "resolved";
  event_at: Date;
  severity: number | null;
  /**
   * Highest severity of the incident's earlier events (by frame time); for an event outside any
   * silence only of those outside one too: a rise told under a silence reached nobody; and of
   * the openings sent once a silence ended (they told the incident at its severity then).
   */
  prior_severity: number | null;
  /**
   * Whether the event's own alert fell under a silence (its `silence_id`); a `resolved` also when
   * any alert of the incident did: the end of an incident a route never heard of stays unsent
   * (the dispatcher still sends it to routes told, see `told_routes`).
   */
  silenced: boolean;
  /** The fault kind the event's alert gave; null when it gave none. */
  kind: IncidentKind | null;
  /**
   * `resolved`: the routes told about the incident before (a message {@link mayHaveReached} them),
   * or being told: with a message still waiting that no silence will stop, the incident's latest
   * alert being outside any (see `settle`).
   */
  told_routes: string[];
  /**
   * The routes with a message about the incident that is not a dead letter (for an `opened`: its
   * alert arrived after another of the incident was planned, and those routes are not paged again):
   * a route whose every message died never heard of it. Silenced and stale ones count for a
   * `resolved` and for an event under a silence (one recorded decision is enough), not for an
   * `updated` outside any: a route that heard nothing yet hears that one, as it would hear an
   * opening.
   */
  messaged_routes: string[];
  /** Whether the incident's resolution was planned already (this event's alert arrived late). */
  after_resolution: boolean;
  incident: IncidentSnapshot;
}

/** A feed condition with the routes that hold its opening, may have heard it, and hold its end. */
export interface ConditionToPlan extends FeedCondition {
  opened_routes: string[];
  told_routes: string[];
  resolved_routes: string[];
}

/** An open incident a route has been told about, for its `repeat_every` reminders. */
export interface OpenIncident {
  /**
   * When the route's first message about it (neither silenced nor stale) was planned: reminders
   * count from here.
   */
  first_at: Date;
  incident: IncidentSnapshot;
  /**
   * Every sensor it flagged, by name (`feature_<idx>` when unnamed), as silences match them;
   * empty unless asked for.
   */
  flagged: string[];
}

/**
 * An open incident whose latest alert fell under a silence that holds no longer (its end passed,
 * it was expired, or its weekly window closed), for the opening of each route that heard nothing.
 */
export interface UnsilencedIncident {
  /** The silence its latest alert fell under. */
  silence_id: string;
  /** Its end or expiry, whichever came first (later than now for a window that closed). */
  silence_end: Date;
  /** Routes that heard of the incident: a message about it neither silenced, stale nor dead. */
  heard_routes: string[];
  incident: IncidentSnapshot;
  /** Every sensor it flagged, by name (`feature_<idx>` when unnamed), as silences match them. */
  flagged: string[];
}

/**
 * One message to write: `state` is `silenced` when the incident is under a silence, `stale` when
 * its event is older than the route's `max_age` (a backfill); both are done at once, never sent.
 */
export interface NewMessage {
  message_id: string;
  route: string;
  event_key: string;
  /** What it is about: an incident, or a feed condition (exactly one of the two). */
  incident_id: string | null;
  condition_id?: string | null;
  event: OutboxEvent;
  event_at: Date;
  severity: number | null;
  body: string;
  state: "pending" | "silenced" | "stale";
}

/** A message claimed for one delivery attempt (`attempts` counts this one). */
export interface ClaimedMessage {
  message_id: string;
  route: string;
  event_key: string;
  incident_id: string | null;
  condition_id: string | null;
  event: OutboxEvent;
  body: string;
  attempts: number;
}

/** How long a message of a route this instance does not know waits before it is a dead letter. */
export const ROUTE_GONE_MS = 3_600_000;

/** The states the Health page counts per route. */
type OutboxState = "pending" | "delivered" | "dead" | "silenced" | "stale" | "superseded";

/** Counts per route and state for the Health page, and the latest dead letters. */
export interface OutboxStatus {
  routes: {
    route: string;
    pending: number;
    delivered: number;
    dead: number;
    silenced: number;
    /** Events older than the route's `max_age` when planned (a backfill), recorded, never sent. */
    stale: number;
    /** Reminders replaced by a newer one, or whose incident resolved, before they were sent. */
    superseded: number;
    /** The route's latest delivery, however long ago. */
    last_delivered_at: string | null;
  }[];
  dead_letters: {
    message_id: string;
    route: string;
    event: OutboxEvent;
    /** What it was about: an incident, or a feed condition. */
    incident_id: string | null;
    condition_id: string | null;
    attempts: number;
    last_status: number | null;
    last_error: string | null;
    at: string;
  }[];
}

interface SnapshotRow {
  incident_id: string;
  stream_id: string;
  kind: IncidentKind;
  started_at: Date;
  resolved_at: Date | null;
  incident_max_severity: number | null;
  max_score: number;
  flagged_sensors: number;
  model_name: string | null;
  model_version: string | null;
  sensors: IncidentSnapshot["sensors"] | null;
}

/** Sensors a message lists at most. */
const MESSAGE_SENSORS = 5;
/** Longest error text kept per message (a receiver's answer may be a whole HTML page). */
const ERROR_CHARS = 500;
/**
 * How long after a condition's end its `condition_resolved` messages are still planned; the
 * retention pruner (`../retention/prune_queries.ts`) keeps an ended condition at least as long.
 */
export const CONDITION_END_OWED_MS = 7 * 86_400_000;
/** Why a reminder whose incident resolved before it was sent never goes. */
const RESOLVED_FIRST = "the incident resolved first";

function toSnapshot(r: SnapshotRow): IncidentSnapshot {
  return {
    incident_id: r.incident_id,
    stream_id: r.stream_id,
    kind: r.kind,
    started_at: r.started_at.toISOString(),
    resolved_at: r.resolved_at?.toISOString() ?? null,
    max_severity: r.incident_max_severity,
    max_score: r.max_score,
    num_sensors: Math.max(r.flagged_sensors, r.sensors?.length ?? 0),
    sensors: r.sensors ?? [],
    model_name: r.model_name,
    model_version: r.model_version,
  };
}

export type OutboxRepository = ReturnType<typeof createOutboxRepository>;

/**
 * Whether outbox row `m` may have reached its receiver: delivered, or tried at least once (an
 * attempt whose answer was lost, or a failure, may have arrived). `last_attempt_at` is the
 * evidence, not `attempts`: a re-sent dead letter counts its tries afresh from 0 but was tried,
 * and a pending message never tried (waiting for its route's delivery slots) reached nobody. A
 * route with such a message about an incident was told of it, so it hears the incident's end,
 * also under a silence: planning a `resolved`, sparing a waiting one from a silence and keeping a
 * tried one from it ask this one rule.
 */
function mayHaveReached(sql: Database["sql"], m: string) {
  return sql`(${sql(m)}.state = 'delivered' OR ${sql(m)}.last_attempt_at IS NOT NULL)`;
}

/**
 * Whether outbox row `m` is a decision recorded instead of a message: `silenced` (under a
 * silence) or `stale` (older than its route's `max_age`, a backfill). Neither told the route
 * anything, so every question of what a route heard treats them alike: one whose messages about an
 * incident are all such (or dead) heard nothing of it yet.
 */
function unsent(sql: Database["sql"], m: string) {
  return sql`(${sql(m)}.state IN ('silenced', 'stale'))`;
}

/**
 * The silence incident `i`'s latest alert (by frame time, `last_alert_id`) fell under, or null.
 * Each alert is judged on its own (silences/silence_repository.ts); `incident.silence_id` stands
 * in only when retention pruned that alert.
 */
function latestSilence(sql: Database["sql"]) {
  return sql`(SELECT CASE WHEN la.alert_id IS NULL THEN i.silence_id ELSE la.silence_id END
    FROM (SELECT 1) one LEFT JOIN alert la ON la.alert_id = i.last_alert_id)`;
}

/**
 * Whether incident `i` is under a silence now: the silence its latest alert fell under is one of
 * `holding` (those that hold now, worked out by the caller: a weekly window is judged in its time
 * zone). So this follows the incident into a silence and out of it, by a new alert outside any or
 * by the silence's end, expiry or window closing, whichever comes first.
 */
function coveredNow(sql: Database["sql"], holding: readonly string[]) {
  return sql`COALESCE(${latestSilence(sql)} = ANY(${holding as string[]}::uuid[]), false)`;
}

/** The prefix of the event key of an opening sent once the silence an incident opened under ended. */
export const AFTER_SILENCE = "after_silence";

/** Every sensor incident `i` flagged, by name (`feature_<idx>` when unnamed), as silences match them. */
function flaggedOf(sql: Database["sql"]) {
  return sql`(SELECT array_agg(COALESCE(x.feature, 'feature_' || x.feature_idx))
    FROM incident_sensor x WHERE x.incident_id = i.incident_id)`;
}

/**
 * The outbox over the backend's database. Every write is one statement (so one transaction, and
 * no connection reserved across statements, see db/database.ts); a lost connection asks the
 * database to recover and is rethrown for the dispatcher's next pass.
 *
 * @example const outbox = createOutboxRepository(database); await outbox.unplanned(100);
 */
export function createOutboxRepository(db: Pick<Database, "sql" | "recover">) {
  const client = () => db.sql;
  const failed = (error: unknown): never => {
    if (isUnavailable(error)) db.recover();
    throw error;
  };

  const snapshot = (sql: Database["sql"]) => sql`
    i.incident_id, i.stream_id, i.kind, i.started_at, i.resolved_at,
    i.max_severity AS incident_max_severity, i.max_score, i.flagged_sensors, i.model_name,
    i.model_version, s.sensors`;
  /**
   * Whether a person took incident `i` (acknowledged it or gave a verdict): its reminders stop,
   * as a page stops escalating once acknowledged; its other events still go out.
   */
  const taken = (sql: Database["sql"]) => sql`(
    EXISTS (SELECT 1 FROM incident_ack k WHERE k.incident_id = i.incident_id)
    OR EXISTS (SELECT 1 FROM incident_verdict v WHERE v.incident_id = i.incident_id))`;
  const sensors = (sql: Database["sql"]) => sql`
    LEFT JOIN LATERAL (
      SELECT json_agg(json_build_object('feature_idx', t.feature_idx, 'feature', t.feature,
        'severity', t.severity, 'score', t.score)
        ORDER BY t.severity DESC NULLS LAST, t.score DESC, t.feature_idx) AS sensors
      FROM (SELECT * FROM incident_sensor x WHERE x.incident_id = i.incident_id
        ORDER BY x.severity DESC NULLS LAST, x.score DESC, x.feature_idx
        LIMIT ${MESSAGE_SENSORS}) t
    ) s ON true`;

  /** Up to `limit` stored incident events not planned yet, oldest first. */
  async function unplanned(limit: number, holding: readonly string[]): Promise<UnplannedEvent[]> {
    const sql = client();
    const rows = await sql<
      (SnapshotRow & {
        alert_id: string;
        event: UnplannedEvent["event"];
        event_at: Date;
        severity: number | null;
        prior_severity: number | null;
        silenced: boolean;
        event_kind: IncidentKind | null;
        told_routes: string[] | null;
        messaged_routes: string[] | null;
        after_resolution: boolean;
      })[]
    >`
      SELECT e.alert_id, e.event, e.event_at, e.max_severity AS severity,
        GREATEST((SELECT max(p.max_severity) FROM incident_event p
          LEFT JOIN alert pa ON pa.alert_id = p.alert_id
          WHERE p.incident_id = e.incident_id
            AND (p.event_at, p.alert_id) < (e.event_at, e.alert_id)
            AND (c.covered OR pa.silence_id IS NULL)),
          -- An opening sent once a silence ended told the incident at its severity then.
          (SELECT max(o.severity) FROM notification_outbox o
            WHERE o.incident_id = e.incident_id AND NOT ${unsent(sql, "o")}
              AND o.event_key LIKE ${`%/${AFTER_SILENCE}/%`})) AS prior_severity,
        -- An end after a silence is sent only to routes told of the incident (the dispatcher's
        -- rule for a silenced end): whoever heard nothing of it is not told that it ended.
        c.covered OR (e.event = 'resolved' AND (i.silence_id IS NOT NULL OR EXISTS (
          SELECT 1 FROM alert sa WHERE sa.incident_id = e.incident_id
            AND sa.silence_id IS NOT NULL))) AS silenced,
        a.kind AS event_kind,
        -- A message waiting, never tried, goes out unless the incident is under a silence now
        -- (settle): its route is being told, so it hears the end.
        CASE WHEN e.event = 'resolved' THEN (SELECT array_agg(DISTINCT o.route)
          FROM notification_outbox o WHERE o.incident_id = e.incident_id
            AND (${mayHaveReached(sql, "o")}
              OR (o.state = 'pending' AND NOT ${coveredNow(sql, holding)}))) END AS told_routes,
        (SELECT array_agg(DISTINCT o.route)
          FROM notification_outbox o WHERE o.incident_id = e.incident_id AND o.state <> 'dead'
            AND (NOT ${unsent(sql, "o")} OR c.covered OR e.event = 'resolved')
        ) AS messaged_routes,
        EXISTS (SELECT 1 FROM incident_event r WHERE r.incident_id = e.incident_id
          AND r.event = 'resolved' AND r.notify_planned_at IS NOT NULL) AS after_resolution,
        ${snapshot(sql)}
      FROM incident_event e JOIN incident i USING (incident_id)
        LEFT JOIN alert a ON a.alert_id = e.alert_id
        -- The event's own alert says whether a silence covered it; the incident's record stands
        -- in when retention pruned the alert before it was planned.
        CROSS JOIN LATERAL (SELECT CASE WHEN a.alert_id IS NULL THEN i.silence_id IS NOT NULL
          ELSE a.silence_id IS NOT NULL END AS covered) c
        ${sensors(sql)}
      WHERE e.notify_planned_at IS NULL
      ORDER BY e.event_at, e.alert_id
      LIMIT ${limit}`.catch(failed);
    return rows.map((r) => ({
      alert_id: r.alert_id,
      event: r.event,
      event_at: r.event_at,
      severity: r.severity,
      prior_severity: r.prior_severity,
      silenced: r.silenced,
      kind: r.event_kind,
      told_routes: r.told_routes ?? [],
      messaged_routes: r.messaged_routes ?? [],
      after_resolution: r.after_resolution,
      incident: toSnapshot(r),
    }));
  }

  /**
   * Writes the messages and marks the events planned, in one statement: a crash leaves either
   * both or neither. A message already written (same event and route) is left as it is;
   * `whileOpen`: only messages whose incident is still open.
   */
  async function plan(
    messages: NewMessage[],
    plannedAlertIds: string[],
    now: Date,
    whileOpen = false,
  ) {
    const sql = client();
    const col = <T>(pick: (m: NewMessage) => T) => messages.map(pick);
    const [row] = await sql<{ inserted: number }[]>`
      WITH ins AS (
        INSERT INTO notification_outbox (message_id, route, event_key, incident_id, condition_id,
          event, event_at, severity, body, state, created_at, next_attempt_at, done_at)
        SELECT u.message_id, u.route, u.event_key, u.incident_id, u.condition_id, u.event,
          u.event_at, u.severity, u.body, u.state, ${now}, ${now},
          CASE WHEN ${unsent(sql, "u")} THEN ${now}::timestamptz END
        FROM unnest(${col((m) => m.message_id)}::text[], ${col((m) => m.route)}::text[],
          ${col((m) => m.event_key)}::text[], ${col((m) => m.incident_id)}::uuid[],
          ${col((m) => m.condition_id ?? null)}::uuid[],
          ${col((m) => m.event)}::text[], ${col((m) => m.event_at.toISOString())}::timestamptz[],
          ${col((m) => m.severity)}::float8[], ${col((m) => m.body)}::text[],
          ${col((m) => m.state)}::text[])
          AS u(message_id, route, event_key, incident_id, condition_id, event, event_at, severity,
            body, state)
        -- A condition's message only while its condition is kept: retention may have deleted it
        -- since it was read (ended a week ago by the pruner's clock), and a message of no
        -- condition would never be pruned. The share lock makes a prune in progress wait, or
        -- the prune skip the condition.
        WHERE (u.condition_id IS NULL OR EXISTS (SELECT 1 FROM feed_condition f
          WHERE f.condition_id = u.condition_id FOR KEY SHARE))
        ${
          // An opening for an incident whose resolution was stored since it was read would raise
          // a page that no `resolved` closes (that end was planned without this route).
          whileOpen
            ? sql`AND EXISTS (SELECT 1 FROM incident w
                WHERE w.incident_id = u.incident_id AND w.resolved_at IS NULL)`
            : sql``
        }
        ON CONFLICT DO NOTHING
        RETURNING 1
      ), marked AS (
        UPDATE incident_event SET notify_planned_at = ${now}
        WHERE alert_id = ANY(${plannedAlertIds}::uuid[]) AND notify_planned_at IS NULL
        RETURNING 1
      )
      SELECT (SELECT count(*) FROM ins)::int AS inserted`.catch(failed);
    return row.inserted;
  }

  /**
   * Open incidents nobody took yet (acknowledged or judged) whose latest alert fell under a
   * silence not among `holding` (those holding now): the silence ended over them. Each pass asks again (nothing is stored but the messages
   * planned from it), so a restart finds the same ones; the opening's stable key keeps it single.
   */
  async function unsilencedOpen(holding: readonly string[]): Promise<UnsilencedIncident[]> {
    const sql = client();
    const rows = await sql<
      (SnapshotRow & {
        after_silence: string;
        silence_end: Date;
        heard: string[] | null;
        flagged: string[] | null;
      })[]
    >`
      SELECT l.silence_id AS after_silence, ${flaggedOf(sql)} AS flagged,
        LEAST(sl.ends_at, COALESCE(sl.expired_at, 'infinity'::timestamptz)) AS silence_end,
        (SELECT array_agg(DISTINCT o.route) FROM notification_outbox o
          WHERE o.incident_id = i.incident_id
            AND NOT ${unsent(sql, "o")} AND o.state <> 'dead') AS heard,
        ${snapshot(sql)}
      FROM incident i
      CROSS JOIN LATERAL (SELECT ${latestSilence(sql)} AS silence_id) l
      JOIN silence sl ON sl.silence_id = l.silence_id
      ${sensors(sql)}
      WHERE i.resolved_at IS NULL AND NOT ${taken(sql)}
        AND NOT (l.silence_id = ANY(${holding as string[]}::uuid[]))`.catch(failed);
    return rows.map((r) => ({
      silence_id: r.after_silence,
      silence_end: r.silence_end,
      heard_routes: r.heard ?? [],
      incident: toSnapshot(r),
      flagged: r.flagged ?? [],
    }));
  }

  /**
   * Open incidents not under a silence now (the silence their latest alert fell under, if any, is
   * not among `holding`: it ended, was expired or its window closed) and nobody took
   * yet (acknowledged or judged) that the route has a message about, with the first one's time;
   * `withFlagged`: with every sensor they flagged.
   */
  async function openIncidentsFor(
    route: string,
    withFlagged: boolean,
    holding: readonly string[],
  ): Promise<OpenIncident[]> {
    const sql = client();
    const rows = await sql<(SnapshotRow & { first_at: Date; flagged: string[] | null })[]>`
      SELECT f.first_at, ${snapshot(sql)},
        ${withFlagged ? flaggedOf(sql) : sql`NULL::text[]`} AS flagged
      FROM incident i
      JOIN LATERAL (SELECT min(o.created_at) AS first_at FROM notification_outbox o
        WHERE o.incident_id = i.incident_id AND o.route = ${route}
          AND NOT ${unsent(sql, "o")}
      ) f ON f.first_at IS NOT NULL
      ${sensors(sql)}
      WHERE i.resolved_at IS NULL AND NOT ${coveredNow(sql, holding)} AND NOT ${taken(sql)}`.catch(
      failed,
    );
    return rows.map((r) => ({
      first_at: r.first_at,
      incident: toSnapshot(r),
      flagged: r.flagged ?? [],
    }));
  }

  /**
   * Reminders waiting for delivery (not in flight), with their incident's stream and every sensor
   * it flagged: {@link settle} silences those a silence holding now covers.
   */
  async function waitingReminders(
    now: Date,
  ): Promise<{ message_id: string; stream_id: string; flagged: string[] }[]> {
    const sql = client();
    const rows = await sql<{ message_id: string; stream_id: string; flagged: string[] | null }[]>`
      SELECT o.message_id, i.stream_id, ${flaggedOf(sql)} AS flagged
      FROM notification_outbox o JOIN incident i USING (incident_id)
      WHERE o.state = 'pending' AND o.event = 'still_open'
        AND (o.locked_until IS NULL OR o.locked_until <= ${now})`.catch(failed);
    return rows.map((r) => ({ ...r, flagged: r.flagged ?? [] }));
  }

  /**
   * Housekeeping before claiming: pending messages of incidents now under a silence (their latest
   * alert fell under one of `holding`, the silences holding now) become `silenced`, and so do the reminders in `coveredReminders`
   * (waiting ones a silence holding now covers, see {@link waitingReminders}); a waiting reminder
   * becomes `superseded` once a newer one is planned or its incident resolved; those of routes
   * this instance does not know become dead letters once they have been due ROUTE_GONE_MS with
   * nobody taking them (another instance sharing the database, in the middle of a rolling change
   * of NOTIFY_CONFIG, may know the route and be retrying them). In-flight ones are left.
   */
  async function settle(
    routes: string[],
    now: Date,
    holding: readonly string[],
    coveredReminders: string[] = [],
  ): Promise<void> {
    const sql = client();
    await sql`
      UPDATE notification_outbox o SET state = 'silenced', done_at = ${now}
      FROM incident i
      WHERE o.state = 'pending' AND i.incident_id = o.incident_id AND ${coveredNow(sql, holding)}
        AND (o.locked_until IS NULL OR o.locked_until <= ${now})
        -- A message tried once (last_attempt_at set, also when a re-send counted its tries
        -- afresh) may have reached its receiver: it goes on, so the receiver hears a whole story
        -- (an opening, then its end). A reminder opens nothing: it stops at once.
        AND (o.last_attempt_at IS NULL OR o.event = 'still_open')
        -- The end of an incident the route was told about goes out (the page it raised closes).
        AND NOT (o.event = 'resolved' AND EXISTS (SELECT 1 FROM notification_outbox d
          WHERE d.incident_id = o.incident_id AND d.route = o.route
            AND d.message_id <> o.message_id AND ${mayHaveReached(sql, "d")}))`.catch(failed);
    if (coveredReminders.length > 0) {
      await sql`
        UPDATE notification_outbox SET state = 'silenced', done_at = ${now}
        WHERE message_id = ANY(${coveredReminders}::text[]) AND state = 'pending'
          AND event = 'still_open' AND (locked_until IS NULL OR locked_until <= ${now})`.catch(
        failed,
      );
    }
    await sql`
      UPDATE notification_outbox o SET state = 'superseded', done_at = ${now},
        last_error = CASE WHEN i.resolved_at IS NOT NULL THEN ${RESOLVED_FIRST}
          WHEN ${taken(sql)} THEN 'a person took the incident (acknowledged or judged)'
          ELSE 'a newer reminder replaced it' END
      FROM incident i
      WHERE o.state = 'pending' AND o.event = 'still_open' AND i.incident_id = o.incident_id
        AND (o.locked_until IS NULL OR o.locked_until <= ${now})
        AND (i.resolved_at IS NOT NULL OR ${taken(sql)} OR EXISTS (SELECT 1
          FROM notification_outbox n
          WHERE n.route = o.route AND n.incident_id = o.incident_id AND n.event = 'still_open'
            AND n.event_at > o.event_at))`.catch(failed);
    await sql`
      UPDATE notification_outbox SET state = 'dead', done_at = ${now},
        last_error = 'the route is not in NOTIFY_CONFIG'
      WHERE state = 'pending' AND NOT (route = ANY(${routes}::text[]))
        AND next_attempt_at <= ${new Date(now.getTime() - ROUTE_GONE_MS)}
        AND (locked_until IS NULL OR locked_until <= ${now})`.catch(failed);
  }

  /**
   * Claims up to `limit` due messages of one route for an attempt, leased until `leaseUntil`. A
   * message waits while an earlier one about the same incident is pending on the route, or while
   * another about it is being sent (a reminder in flight when the incident's end arrives), so a
   * receiver hears of an incident's events in order. A reminder whose incident resolved (since
   * {@link settle} ran) is never sent: it becomes `superseded` here.
   *
   * Work grows about linearly (a sort) with the route's pending messages, whatever the planner's
   * statistics say: one pass sorts them by incident or condition to find each one's head (and
   * whether another of it is in flight), then only the heads taken are locked, by key. Comparing each
   * candidate with every other pending message of the route (`NOT EXISTS` on `incident_id = …
   * OR condition_id = …`, which no index serves; split in two, the planner still rescans the
   * route's pending messages per candidate while its statistics, taken before a receiver went
   * down, say there are none) cost 36 M comparisons, 4 s per claim, once 6,400 were pending.
   */
  async function claim(
    route: string,
    limit: number,
    now: Date,
    leaseUntil: Date,
  ): Promise<ClaimedMessage[]> {
    if (limit <= 0) return [];
    const sql = client();
    const resolvedReminder = (m: string) => sql`(${sql(m)}.event = 'still_open' AND EXISTS (
      SELECT 1 FROM incident r WHERE r.incident_id = ${sql(m)}.incident_id
        AND r.resolved_at IS NOT NULL))`;
    return await sql<ClaimedMessage[]>`
      WITH superseded AS (
        UPDATE notification_outbox s SET state = 'superseded', done_at = ${now},
          last_error = ${RESOLVED_FIRST}
        WHERE s.state = 'pending' AND s.route = ${route} AND ${resolvedReminder("s")}
          AND (s.locked_until IS NULL OR s.locked_until <= ${now})
        RETURNING 1
      )
      UPDATE notification_outbox o
      SET attempts = o.attempts + 1, locked_until = ${leaseUntil}, last_attempt_at = ${now}
      WHERE o.message_id IN (
        SELECT c.message_id
        FROM (
          SELECT p.message_id, p.next_attempt_at, p.event_at
          FROM (
            -- Each message's place among the route's pending ones about its subject (exactly
            -- one of the two ids is set), and how many of those are in flight.
            SELECT q.*,
              row_number() OVER (PARTITION BY q.incident_id, q.condition_id
                ORDER BY q.event_at, q.message_id) AS place,
              count(*) FILTER (WHERE q.locked_until > ${now})
                OVER (PARTITION BY q.incident_id, q.condition_id) AS sending
            FROM notification_outbox q WHERE q.state = 'pending' AND q.route = ${route}) p
          WHERE p.place = 1 AND p.sending = 0 AND p.next_attempt_at <= ${now}
            AND (p.locked_until IS NULL OR p.locked_until <= ${now}) AND NOT ${resolvedReminder("p")}
          ORDER BY p.next_attempt_at, p.event_at, p.message_id) h
        -- Locked one by one in that order until the limit is reached; one another backend holds is
        -- skipped, and one changed since the pass read it is checked again (already claimed,
        -- delivered, retried later: left).
        CROSS JOIN LATERAL (
          SELECT c.message_id FROM notification_outbox c
          WHERE c.message_id = h.message_id AND c.state = 'pending' AND c.next_attempt_at <= ${now}
            AND (c.locked_until IS NULL OR c.locked_until <= ${now})
          FOR UPDATE SKIP LOCKED) c
        ORDER BY h.next_attempt_at, h.event_at, h.message_id
        LIMIT ${limit})
      RETURNING o.message_id, o.route, o.event_key, o.incident_id, o.condition_id, o.event,
        o.body, o.attempts`.catch(failed);
  }

  async function delivered(messageId: string, status: number, now: Date) {
    await client()`
      UPDATE notification_outbox SET state = 'delivered', done_at = ${now}, last_status = ${status},
        last_error = NULL, locked_until = NULL
      WHERE message_id = ${messageId} AND state = 'pending'`.catch(failed);
  }

  async function retryLater(
    messageId: string,
    failure: { status: number | null; error: string },
    nextAttemptAt: Date,
  ) {
    await client()`
      UPDATE notification_outbox SET next_attempt_at = ${nextAttemptAt},
        last_status = ${failure.status}, last_error = ${failure.error.slice(0, ERROR_CHARS)},
        locked_until = NULL
      WHERE message_id = ${messageId} AND state = 'pending'`.catch(failed);
  }

  async function dead(
    messageId: string,
    failure: { status: number | null; error: string },
    now: Date,
  ) {
    await client()`
      UPDATE notification_outbox SET state = 'dead', done_at = ${now},
        last_status = COALESCE(${failure.status}, last_status),
        last_error = ${failure.error.slice(0, ERROR_CHARS)}, locked_until = NULL
      WHERE message_id = ${messageId} AND state = 'pending'`.catch(failed);
  }

  /**
   * Pending messages now; the delivered, dead, silenced, stale and superseded ones done in the last
   * `windowMs` (by when they were done, not planned: a message delivered after a day of retries
   * counts today); each route's latest delivery, however long ago (of `routes` and those counted);
   * and the newest dead letters.
   */
  async function status(
    now: Date,
    windowMs: number,
    routes: string[] = [],
    deadLetters = 10,
  ): Promise<OutboxStatus> {
    const sql = client();
    const since = new Date(now.getTime() - windowMs);
    const counts = await sql<{ route: string; state: string; n: number }[]>`
      SELECT route, 'pending' AS state, count(*)::int AS n
      FROM notification_outbox WHERE state = 'pending' GROUP BY route
      UNION ALL
      SELECT route, state, count(*)::int FROM notification_outbox
      WHERE done_at >= ${since} AND state <> 'pending' GROUP BY route, state`.catch(failed);
    const names = [...new Set([...routes, ...counts.map((c) => c.route)])];
    // One index probe per route (migration 0019), not a scan of every delivery ever made.
    const lastDelivered = await sql<{ route: string; at: Date | null }[]>`
      SELECT r.route, (SELECT max(o.done_at) FROM notification_outbox o
        WHERE o.route = r.route AND o.state = 'delivered') AS at
      FROM unnest(${names}::text[]) AS r(route)`.catch(failed);
    const dead = await sql<
      {
        message_id: string;
        route: string;
        event: OutboxEvent;
        incident_id: string | null;
        condition_id: string | null;
        attempts: number;
        last_status: number | null;
        last_error: string | null;
        done_at: Date;
      }[]
    >`
      SELECT message_id, route, event, incident_id, condition_id, attempts, last_status,
        last_error, done_at
      FROM notification_outbox WHERE state = 'dead'
      ORDER BY done_at DESC, message_id LIMIT ${deadLetters}`.catch(failed);
    const byRoute = new Map<string, OutboxStatus["routes"][number]>();
    const entry = (route: string) => {
      const found = byRoute.get(route) ?? {
        route,
        pending: 0,
        delivered: 0,
        dead: 0,
        silenced: 0,
        stale: 0,
        superseded: 0,
        last_delivered_at: null,
      };
      byRoute.set(route, found);
      return found;
    };
    for (const c of counts) {
      entry(c.route)[c.state as OutboxState] = c.n;
    }
    for (const d of lastDelivered) {
      if (d.at) entry(d.route).last_delivered_at = d.at.toISOString();
    }
    return {
      routes: [...byRoute.values()].sort((a, b) => a.route.localeCompare(b.route)),
      dead_letters: dead.map((d) => ({
        message_id: d.message_id,
        route: d.route,
        event: d.event,
        incident_id: d.incident_id,
        condition_id: d.condition_id,
        attempts: d.attempts,
        last_status: d.last_status,
        last_error: d.last_error,
        at: d.done_at.toISOString(),
      })),
    };
  }

  /**
   * The openings of conditions that ended before they were ever tried (waiting for a slot, or a
   * receiver's retry never began): `superseded`, never sent; a page about what is over would
   * raise one that its end then closes at once.
   */
  async function supersedeEndedOpenings(now: Date): Promise<void> {
    const sql = client();
    await sql`
      UPDATE notification_outbox o SET state = 'superseded', done_at = ${now},
        last_error = 'the condition ended before it was sent'
      FROM feed_condition c
      WHERE o.state = 'pending' AND o.event = 'condition_opened'
        AND o.condition_id = c.condition_id AND c.ended_at IS NOT NULL
        AND o.last_attempt_at IS NULL AND (o.locked_until IS NULL OR o.locked_until <= ${now})`.catch(
      failed,
    );
  }

  /**
   * Conditions that may have something to plan, oldest first, up to `limit` after `after` (a
   * page's last): each open one that some of the `configured` routes holds no opening of, and each ended one
   * whose opening some route holds (not superseded) without its end; with the routes that hold an
   * opening, those it may have reached ({@link mayHaveReached}: they hear the end) and those that
   * hold the end. Those told already are left out, so a plant's hundreds of dark lines never
   * crowd out the next condition.
   */
  async function conditionsToPlan(
    limit: number,
    now: Date,
    configured: string[],
    after?: { since: Date; condition_id: string },
  ): Promise<ConditionToPlan[]> {
    const sql = client();
    const routes = (where: ReturnType<typeof sql>) => sql`COALESCE((SELECT array_agg(o.route)
      FROM notification_outbox o WHERE o.condition_id = c.condition_id AND ${where}), '{}')`;
    return await sql<ConditionToPlan[]>`
      SELECT c.*,
        ${routes(sql`o.event = 'condition_opened'`)} AS opened_routes,
        ${routes(sql`o.event = 'condition_opened' AND ${mayHaveReached(sql, "o")}`)} AS told_routes,
        ${routes(sql`o.event = 'condition_resolved'`)} AS resolved_routes
      FROM feed_condition c
      -- Ended within the week: a backend down for longer no longer owes an end (the condition's row is
      -- the record), and the months of ended episodes are not read every pass.
      WHERE ((c.ended_at IS NULL AND (SELECT count(DISTINCT o.route) FROM notification_outbox o
          WHERE o.condition_id = c.condition_id AND o.event = 'condition_opened'
            AND o.route = ANY(${configured}::text[])) < ${configured.length})
        OR (c.ended_at > ${new Date(now.getTime() - CONDITION_END_OWED_MS)}
          AND EXISTS (SELECT 1 FROM notification_outbox o
            WHERE o.condition_id = c.condition_id AND o.event = 'condition_opened'
              AND o.state <> 'superseded'
              AND NOT EXISTS (SELECT 1 FROM notification_outbox r
                WHERE r.condition_id = o.condition_id AND r.route = o.route
                  AND r.event = 'condition_resolved'))))
        ${after ? sql`AND (c.since, c.condition_id) > (${after.since}, ${after.condition_id}::uuid)` : sql``}
      ORDER BY c.since, c.condition_id
      LIMIT ${limit}`.catch(failed);
  }

  return {
    supersedeEndedOpenings,
    conditionsToPlan,
    unplanned,
    plan,
    unsilencedOpen,
    openIncidentsFor,
    waitingReminders,
    settle,
    claim,
    delivered,
    retryLater,
    dead,
    status,
  };
}

/** What the outbox holds about one incident: whether anyone was told of it, for the console. */
export interface IncidentNotified {
  /** Messages written about it, of every state. */
  messages: number;
  /** Messages delivered (answered 2xx). */
  delivered: number;
  /** Messages that may have reached a receiver: delivered, or tried at least once. */
  reached: number;
  /** The routes of those, by name. */
  routes: string[];
  /** When the first of those was delivered or tried (ISO), or null. */
  first_at: string | null;
  /** Messages written `silenced`: the event fell under a silence, nobody was told. */
  silenced: number;
  /** Messages written `stale`: older than the route's `max_age`, never sent. */
  stale: number;
  /** Messages waiting for their first try. */
  waiting: number;
}

/**
 * What the outbox holds about each of `incidentIds` (those without a message are left out): one
 * statement for a whole list, over the outbox's incident index. Whether a route was told follows
 * {@link mayHaveReached}; a silenced or stale message told nobody.
 */
export async function incidentsNotified(
  sql: Database["sql"],
  incidentIds: readonly string[],
): Promise<Map<string, IncidentNotified>> {
  const found = new Map<string, IncidentNotified>();
  if (incidentIds.length === 0) return found;
  const reached = mayHaveReached(sql, "o");
  const rows = await sql<
    (Omit<IncidentNotified, "first_at"> & { incident_id: string; first_at: Date | null })[]
  >`
    SELECT o.incident_id::text AS incident_id, count(*)::int AS messages,
      count(*) FILTER (WHERE o.state = 'delivered')::int AS delivered,
      count(*) FILTER (WHERE ${reached})::int AS reached,
      COALESCE(array_agg(DISTINCT o.route ORDER BY o.route) FILTER (WHERE ${reached}), '{}')
        AS routes,
      min(CASE WHEN o.state = 'delivered' THEN COALESCE(o.last_attempt_at, o.done_at)
        ELSE o.last_attempt_at END) FILTER (WHERE ${reached}) AS first_at,
      count(*) FILTER (WHERE o.state = 'silenced')::int AS silenced,
      count(*) FILTER (WHERE o.state = 'stale')::int AS stale,
      count(*) FILTER (WHERE o.state = 'pending' AND NOT ${reached})::int AS waiting
    FROM notification_outbox o
    WHERE o.incident_id = ANY(${incidentIds as string[]}::uuid[])
    GROUP BY o.incident_id`;
  for (const { incident_id, first_at, ...counts } of rows) {
    found.set(incident_id, { ...counts, first_at: first_at ? first_at.toISOString() : null });
  }
  return found;
}
