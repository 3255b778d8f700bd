// Reads incidents (list, one with its timeline, heatmap) and stores acknowledgements and verdicts, with postgres.js.

import type { FaultKind } from "../../contracts/alert.ts";
import type { Identity } from "../../contracts/auth.ts";
import type { Recurrence } from "../../contracts/silence.ts";
import { compileSilence, silenceHolds } from "../../contracts/silence_match.ts";
import { encodeCursor } from "../alerts/_cursor.ts";
import { type FeatureRow, toFeature } from "../alerts/alert_repository.ts";
import { unverified } from "../audit/actor.ts";
import { auditInsert } from "../audit/audit_repository.ts";
import type { Database } from "../db/database.ts";
import { dbErrorTranslator } from "../db/db_errors.ts";
import type {
  Acknowledgement,
  Heatmap,
  IncidentDetail,
  IncidentFilter,
  IncidentPage,
  IncidentSensor,
  IncidentSummary,
  TimelineEntry,
  Verdict,
  VerdictKind,
} from "./incident_types.ts";
import { findSimilarIncidents } from "./similar_incidents.ts";

/**
 * An incident the pruner deleted between this statement's read of it and its insert fails the
 * foreign key (23503): that is an incident that is not there (no rows: the route answers 404).
 */
const goneOr =
  (failed: (error: unknown) => never) =>
  (error: unknown): never[] => {
    if ((error as { code?: unknown } | null)?.code === "23503") return [];
    return failed(error);
  };

export type IncidentRepository = ReturnType<typeof createIncidentRepository>;

interface IncidentRow {
  incident_id: string;
  stream_id: string;
  started_at: Date;
  last_alert_at: Date;
  resolved_at: Date | null;
  max_severity: number | null;
  max_score: number;
  alerts: number;
  num_sensors: number;
  model_name: string | null;
  model_version: string | null;
  kind: FaultKind;
  silence_id: string | null;
  /** The silence `silence_id` names (row_to_json: times as text), to judge whether it holds now. */
  silence: {
    starts_at: string;
    ends_at: string;
    expired_at: string | null;
    recurrence: Recurrence | null;
  } | null;
  superseded_by: string | null;
  opened_model_name: string | null;
  opened_model_version: string | null;
  sensors: (FeatureRow & { peak_at: string })[] | null;
  acked_by: string | null;
  note: string | null;
  acked_at: Date | null;
  verdict: VerdictKind | null;
  verdict_cause: string | null;
  verdict_note: string | null;
  verdict_by: string | null;
  verdict_at: Date | null;
}

interface VerdictRow {
  verdict: VerdictKind;
  cause: string | null;
  note: string | null;
  given_by: string;
  given_at: Date;
}

const iso = (d: Date | string) => new Date(d).toISOString();

const toVerdict = (r: VerdictRow): Verdict => ({
  verdict: r.verdict,
  cause: r.cause,
  note: r.note,
  by: r.given_by,
  at: iso(r.given_at),
});

/** Whether the silence an incident's latest alert fell under still holds at `now`. */
function silencedAt(row: IncidentRow, now: number): boolean {
  const s = row.silence;
  if (row.silence_id === null || s === null) return false;
  const compiled = compileSilence({
    silence_id: row.silence_id,
    // Holding is a matter of time: the alert was matched against stream and sensors when stored.
    matchers: { stream: "*", sensors: [] },
    starts_at: s.starts_at,
    ends_at: s.ends_at,
    expired_at: s.expired_at,
    recurrence: s.recurrence,
  });
  return silenceHolds(compiled, now);
}

function toSummary(row: IncidentRow, now: number): IncidentSummary {
  return {
    incident_id: row.incident_id,
    stream_id: row.stream_id,
    state: row.resolved_at === null ? "open" : "resolved",
    started_at: iso(row.started_at),
    last_alert_at: iso(row.last_alert_at),
    resolved_at: row.resolved_at === null ? null : iso(row.resolved_at),
    max_severity: row.max_severity,
    max_score: row.max_score,
    alerts: row.alerts,
    num_sensors: row.num_sensors,
    model_name: row.model_name,
    model_version: row.model_version,
    opened_model_name: row.opened_model_name,
    opened_model_version: row.opened_model_version,
    kind: row.kind,
    silence_id: row.silence_id,
    silenced: silencedAt(row, now),
    superseded_by: row.superseded_by,
    sensors: (row.sensors ?? []).map(
      (s): IncidentSensor => ({ ...toFeature(s), peak_at: iso(s.peak_at) }),
    ),
    acknowledged:
      row.acked_by === null
        ? null
        : { by: row.acked_by, note: row.note ?? "", at: iso(row.acked_at!) },
    verdict:
      row.verdict === null
        ? null
        : toVerdict({
            verdict: row.verdict,
            cause: row.verdict_cause,
            note: row.verdict_note,
            given_by: row.verdict_by!,
            given_at: row.verdict_at!,
          }),
  };
}

/**
 * The incident repository over a postgres.js client. Incidents are written by the alert
 * repository's insert (same statement as the alert); this reads them and records acks and
 * verdicts. `now` is the clock an incident's silence is judged by (`silenced`).
 *
 * @example const incidents = createIncidentRepository(db, Date.now); await incidents.list({ limit: 20, sensorsPerIncident: 5 });
 */
export function createIncidentRepository(
  db: Pick<Database, "sql" | "recover">,
  now: () => number = Date.now,
) {
  const client = () => db.sql;
  const failed = dbErrorTranslator(db);

  // Sensors strongest first: severity, then score (alerts without evidence have only a score).
  // History and related sensors (the bulk of the evidence) only for the strongest `context`
  // sensors and the sensors they name as related; lists (context 0) never show them.
  const base = (sql: Database["sql"], sensors: number, context = 0) => sql`
    SELECT i.*, k.acked_by, k.note, k.acked_at, s.sensors, vd.verdict,
      (SELECT json_build_object('starts_at', sl.starts_at, 'ends_at', sl.ends_at,
        'expired_at', sl.expired_at, 'recurrence', sl.recurrence)
        FROM silence sl WHERE sl.silence_id = i.silence_id) AS silence,
      vd.cause AS verdict_cause, vd.note AS verdict_note, vd.given_by AS verdict_by,
      vd.given_at AS verdict_at,
      GREATEST(i.flagged_sensors,
        (SELECT count(*)::int FROM incident_sensor c WHERE c.incident_id = i.incident_id))
        AS num_sensors
    FROM incident i
    LEFT JOIN incident_ack k ON k.incident_id = i.incident_id
    LEFT JOIN LATERAL (
      SELECT * FROM incident_verdict w WHERE w.incident_id = i.incident_id
      ORDER BY w.verdict_id DESC LIMIT 1
    ) vd ON true
    LEFT JOIN LATERAL (
      SELECT json_agg(json_build_object('feature_idx', t.feature_idx, 'score', t.score,
        'feature', t.feature, 'severity', t.severity, 'value', t.value,
        'window', t.window_values, 'typical_low', t.typical_low,
        'typical_high', t.typical_high, 'statistic', t.statistic, 'peak_at', t.peak_at
        ${
          context > 0
            ? sql`, 'history', CASE WHEN t.rank <= ${context} OR t.feature_idx = ANY(rel.named)
                THEN t.history END, 'related', CASE WHEN t.rank <= ${context} THEN t.related END`
            : sql``
        })
        ORDER BY t.severity DESC NULLS LAST, t.score DESC, t.feature_idx) AS sensors
      FROM ${
        context > 0
          ? sql`(
              SELECT array_agg((r.value->>'feature_idx')::int) AS named
              FROM (SELECT related FROM incident_sensor y WHERE y.incident_id = i.incident_id
                ORDER BY severity DESC NULLS LAST, score DESC, feature_idx LIMIT ${context}) top
              CROSS JOIN LATERAL jsonb_array_elements(COALESCE(top.related, '[]'::jsonb)) r
            ) rel CROSS JOIN LATERAL`
          : sql``
      } (SELECT * FROM (SELECT *, row_number() OVER (
          ORDER BY severity DESC NULLS LAST, score DESC, feature_idx) AS rank
        FROM incident_sensor x WHERE x.incident_id = i.incident_id) ranked
        -- The sensors the strongest name as related come too, however they rank: a page must
        -- not call a flagged partner unflagged because it ranked below the list's length.
        WHERE ranked.rank <= ${sensors}
          ${context > 0 ? sql`OR ranked.feature_idx = ANY(rel.named)` : sql``}) t
    ) s ON true`;

  /** Incidents newest first (by start), one page after `cursor`. */
  async function list(q: IncidentFilter): Promise<IncidentPage> {
    const sql = client();
    const at = now();
    const rows = await sql<IncidentRow[]>`
      ${base(sql, q.sensorsPerIncident)}
      WHERE true
      ${q.state === "open" ? sql`AND i.resolved_at IS NULL` : sql``}
      ${q.state === "resolved" ? sql`AND i.resolved_at IS NOT NULL` : sql``}
      ${q.acknowledged === true ? sql`AND k.incident_id IS NOT NULL` : sql``}
      ${q.acknowledged === false ? sql`AND k.incident_id IS NULL` : sql``}
      ${
        // An anti-join, walked newest first and stopped at the page. Tested on the lateral's row
        // (`vd.verdict IS NULL`), the planner takes it for rare and builds and sorts every
        // unjudged incident's sensors (2 s for a year of incidents, 17 ms this way).
        q.verdict === "none"
          ? sql`AND NOT EXISTS (SELECT 1 FROM incident_verdict nv
              WHERE nv.incident_id = i.incident_id)`
          : sql``
      }
      ${q.verdict !== undefined && q.verdict !== "none" ? sql`AND vd.verdict = ${q.verdict}` : sql``}
      ${q.streamId !== undefined ? sql`AND i.stream_id = ${q.streamId}` : sql``}
      ${
        q.featureIdx !== undefined
          ? sql`AND EXISTS (SELECT 1 FROM incident_sensor f
              WHERE f.incident_id = i.incident_id AND f.feature_idx = ${q.featureIdx})`
          : sql``
      }
      ${q.from ? sql`AND i.started_at >= ${q.from}` : sql``}
      ${q.to ? sql`AND i.started_at < ${q.to}` : sql``}
      ${q.cursor ? sql`AND (i.started_at, i.incident_id) < (${q.cursor.ts}, ${q.cursor.alertId}::uuid)` : sql``}
      ORDER BY i.started_at DESC, i.incident_id DESC
      LIMIT ${q.limit + 1}`.catch(failed);
    const more = rows.length > q.limit;
    const page = rows.slice(0, q.limit);
    const last = page.at(-1);
    return {
      incidents: page.map((r) => toSummary(r, at)),
      next_cursor:
        more && last ? encodeCursor({ ts: last.started_at, alertId: last.incident_id }) : null,
    };
  }

  /** One incident as lists show it (at most `sensors` sensors), or `undefined`. */
  async function summary(
    incidentId: string,
    sensors = 5,
    context = 0,
  ): Promise<IncidentSummary | undefined> {
    const sql = client();
    const rows = await sql<IncidentRow[]>`
      ${base(sql, sensors, context)} WHERE i.incident_id = ${incidentId}`.catch(failed);
    return rows[0] ? toSummary(rows[0], now()) : undefined;
  }

  /**
   * One incident with its strongest `sensors` sensors' evidence and its timeline, or `undefined`.
   * The strongest `context` of them also carry their history and related sensors, and so do the
   * sensors those name as related (a page charts only a few; the API gives every one).
   */
  async function get(
    incidentId: string,
    sensors = 100_000,
    context = sensors,
  ): Promise<IncidentDetail | undefined> {
    const head = await summary(incidentId, sensors, context);
    if (!head) return undefined;
    const sql = client();
    const events = await sql<
      {
        alert_id: string;
        event: "opened" | "updated" | "resolved";
        event_at: Date;
        num_sensors: number;
        max_severity: number | null;
        model_name: string | null;
        model_version: string | null;
      }[]
    >`
      SELECT e.alert_id, e.event, e.event_at, e.num_sensors, e.max_severity, a.model_name,
        a.model_version
      FROM incident_event e LEFT JOIN alert a ON a.alert_id = e.alert_id
      WHERE e.incident_id = ${incidentId}
      -- An end at the time of the last update (the backend's, 0023) comes after it.
      ORDER BY e.event_at, e.event = 'resolved', e.alert_id`.catch(failed);
    const timeline: TimelineEntry[] = events.map((e) => ({
      event: e.event,
      at: iso(e.event_at),
      alert_id: e.alert_id,
      num_sensors: e.num_sensors,
      max_severity: e.max_severity,
      model_name: e.model_name,
      model_version: e.model_version,
    }));
    if (head.acknowledged) timeline.push({ event: "acknowledged", ...head.acknowledged });
    timeline.sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
    const verdicts = await sql<VerdictRow[]>`
      SELECT verdict, cause, note, given_by, given_at FROM incident_verdict
      WHERE incident_id = ${incidentId} ORDER BY verdict_id`.catch(failed);
    return { ...head, timeline, verdicts: verdicts.map(toVerdict) };
  }

  /**
   * Records a verdict as a new row (earlier ones stay, superseded). Returns it with `first: true`
   * when the incident had none before; `undefined` when there is no such incident.
   */
  async function giveVerdict(
    incidentId: string,
    v: {
      verdict: VerdictKind;
      cause?: string;
      note?: string;
      by: string;
      at: Date;
      actor?: Identity;
    },
  ): Promise<{ first: boolean; verdict: Verdict } | undefined> {
    // Verdicts on one incident queue on its row, each in its own transaction, so each reads the
    // ones committed before it: of two first verdicts given at once, one is first (201), the
    // other a change (200). `prior` reads the rows as they were before this insert; the audit
    // row commits with the verdict or not at all.
    const [row] = await client()
      .begin(async function recordVerdict(tx) {
        const sql = tx as unknown as Database["sql"];
        await sql`SELECT 1 FROM incident WHERE incident_id = ${incidentId} FOR NO KEY UPDATE`;
        const audit = auditInsert(
          sql,
          {
            action: "incident.verdict",
            target: `incident:${incidentId}`,
            actor: v.actor ?? unverified(v.by),
            at: v.at,
            detail: { verdict: v.verdict, cause: v.cause ?? null, note: v.note ?? null },
          },
          "inserted",
        );
        return await sql<(VerdictRow & { first: boolean })[]>`
          WITH prior AS (
            SELECT count(*)::int AS n FROM incident_verdict WHERE incident_id = ${incidentId}
          ), inserted AS (
            INSERT INTO incident_verdict (incident_id, verdict, cause, note, given_by, given_at)
            SELECT incident_id, ${v.verdict}, ${v.cause ?? null}, ${v.note ?? null}, ${v.by},
              ${v.at}
            FROM incident WHERE incident_id = ${incidentId}
            RETURNING verdict, cause, note, given_by, given_at
          ), audited AS (${audit})
          SELECT inserted.*, prior.n = 0 AS first FROM inserted, prior`;
      })
      .catch(goneOr(failed));
    return row ? { first: row.first, verdict: toVerdict(row) } : undefined;
  }

  /**
   * Records the first acknowledgement of an incident. Returns it with `created: true`, or the
   * earlier one with `created: false`; `undefined` when there is no such incident.
   */
  async function acknowledge(
    incidentId: string,
    ack: { by: string; note: string; at: Date; actor?: Identity },
  ): Promise<{ created: boolean; acknowledgement: Acknowledgement } | undefined> {
    const sql = client();
    const audit = auditInsert(
      sql,
      {
        action: "incident.acknowledge",
        target: `incident:${incidentId}`,
        actor: ack.actor ?? unverified(ack.by),
        at: ack.at,
        detail: { note: ack.note },
      },
      "inserted",
    );
    // ON CONFLICT waits for a concurrent first ack to commit, so the SELECT below then sees it.
    // Only a first acknowledgement is audited: a repeat changes nothing.
    const inserted = await sql<{ acked_by: string; note: string; acked_at: Date }[]>`
      WITH inserted AS (
        INSERT INTO incident_ack (incident_id, acked_by, note, acked_at)
        SELECT incident_id, ${ack.by}, ${ack.note}, ${ack.at} FROM incident
        WHERE incident_id = ${incidentId}
        ON CONFLICT (incident_id) DO NOTHING
        RETURNING acked_by, note, acked_at
      ), audited AS (${audit})
      SELECT * FROM inserted`.catch(goneOr(failed));
    const toAck = (r: { acked_by: string; note: string; acked_at: Date }) => ({
      by: r.acked_by,
      note: r.note,
      at: iso(r.acked_at),
    });
    if (inserted[0]) return { created: true, acknowledgement: toAck(inserted[0]) };
    const [earlier] = await sql<{ acked_by: string; note: string; acked_at: Date }[]>`
      SELECT acked_by, note, acked_at FROM incident_ack
      WHERE incident_id = ${incidentId}`.catch(failed);
    return earlier ? { created: false, acknowledgement: toAck(earlier) } : undefined;
  }

  /**
   * Severity per time bucket for the `sensors` most severe sensors: each (incident, sensor)'s
   * peak evidence in the bucket of its peak (`peak_at`), for peaks in [from, to) and, in the first
   * bucket, earlier peaks of incidents still open at `from` (a long incident is not left out
   * because it began, or peaked, before the period). The strongest per cell, with its incident.
   * A sensor is named as at its latest peak (a renamed sensor by its current name).
   */
  async function heatmap(q: {
    from: Date;
    to: Date;
    buckets: number;
    sensors: number;
  }): Promise<Heatmap> {
    const sql = client();
    const bucketMs = Math.max(1, Math.ceil((q.to.getTime() - q.from.getTime()) / q.buckets));
    // Two index scans: peaks in the period (incident_sensor_peak_idx), and the sensors of
    // incidents open at its start (incident_open_idx, incident_resolved_idx) that peaked before.
    const evidence = sql`
      SELECT feature_idx, feature, severity, score, incident_id, peak_at
      FROM incident_sensor WHERE peak_at >= ${q.from} AND peak_at < ${q.to}
      UNION ALL
      SELECT s.feature_idx, s.feature, s.severity, s.score, s.incident_id, s.peak_at
      FROM incident i JOIN incident_sensor s USING (incident_id)
      WHERE i.started_at < ${q.from} AND (i.resolved_at IS NULL OR i.resolved_at >= ${q.from})
        AND s.peak_at < ${q.from}`;
    const top = await sql<
      { feature_idx: number; feature: string | null; max_severity: number | null }[]
    >`
      SELECT feature_idx,
        (array_agg(feature ORDER BY peak_at DESC, incident_id DESC)
          FILTER (WHERE feature IS NOT NULL))[1] AS feature,
        max(severity) AS max_severity
      FROM (${evidence}) e
      GROUP BY feature_idx
      ORDER BY max(severity) DESC NULLS LAST, max(score) DESC, feature_idx
      LIMIT ${q.sensors}`.catch(failed);
    const cells = top.length
      ? await sql<Heatmap["cells"]>`
          SELECT DISTINCT ON (feature_idx, bucket) feature_idx, bucket, severity, score,
            incident_id
          FROM (SELECT *, floor(extract(epoch FROM greatest(peak_at, ${q.from}::timestamptz)
              - ${q.from}::timestamptz) * 1000 / ${bucketMs})::int AS bucket
            FROM (${evidence}) e
            WHERE feature_idx = ANY(${top.map((t) => t.feature_idx)}::int[])) s
          ORDER BY feature_idx, bucket, severity DESC NULLS LAST, score DESC, incident_id`.catch(
          failed,
        )
      : [];
    return {
      from: q.from.toISOString(),
      to: q.to.toISOString(),
      bucket_ms: bucketMs,
      buckets: q.buckets,
      sensors: top.map((t) => ({ ...t })),
      cells: cells.map((c) => ({ ...c })),
    };
  }

  /** Earlier incidents like this one, newest first (see similar_incidents.ts for the rule). */
  async function similar(incidentId: string, q: { limit: number; minShared: number }) {
    return await findSimilarIncidents(client(), incidentId, q).catch(failed);
  }

  /** How many incidents are open: the Now page says so when it lists only the newest. */
  async function countOpen(): Promise<number> {
    const [row] = await client()<{ n: number }[]>`
      SELECT count(*)::int AS n FROM incident WHERE resolved_at IS NULL`.catch(failed);
    return row.n;
  }

  /** How many incidents resolved that started at `from` or later (the Now page's last hour). */
  async function countResolvedSince(from: Date): Promise<number> {
    const [row] = await client()<{ n: number }[]>`
      SELECT count(*)::int AS n FROM incident
      WHERE started_at >= ${from} AND resolved_at IS NOT NULL`.catch(failed);
    return row.n;
  }

  return {
    list,
    summary,
    get,
    acknowledge,
    giveVerdict,
    heatmap,
    similar,
    countOpen,
    countResolvedSince,
  };
}
