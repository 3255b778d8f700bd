// Stores and reads alerts with postgres.js: one transaction per alert, idempotent on alert_id.
import { SpanKind, SpanStatusCode, type Tracer, trace } from "@opentelemetry/api";
import type { FaultKind, History, RelatedSensor } from "../../contracts/alert.ts";
import type { Database } from "../db/database.ts";
import { DuplicateError, dbErrorTranslator } from "../db/db_errors.ts";
import { encodeCursor } from "./_cursor.ts";
import type {
  AlertFeature,
  AlertFilter,
  AlertPage,
  AlertSummary,
  NewAlert,
  StoredAlert,
} from "./alert_types.ts";

export type { AlertFilter, AlertPage, AlertSummary, NewAlert, StoredAlert };

export type AlertRepository = ReturnType<typeof createAlertRepository>;

interface AlertRow {
  alert_id: string;
  stream_id: string;
  ts: Date;
  frame_timestamp: Date | null;
  anomaly_detected: boolean;
  num_anomalous_features: number;
  max_score: number;
  threshold: number | null;
  model_version: string | null;
  model_name: string | null;
  latency_ms: number | null;
  received_at: Date;
  incident_id: string | null;
  event: "opened" | "updated" | "resolved" | null;
  incident_started_at: Date | null;
  max_severity: number | null;
  kind: FaultKind | null;
  silence_id: string | null;
  features: FeatureRow[] | null;
}

/** A feature as json_agg returns it: evidence columns are null when the alert carried none. */
export interface FeatureRow {
  feature_idx: number;
  score: number;
  feature: string | null;
  severity: number | null;
  value: number | null;
  window: number[] | null;
  typical_low: number | null;
  typical_high: number | null;
  statistic: string | null;
  /** Absent (not only null) where a query leaves the context out. */
  history?: History | null;
  related?: RelatedSensor[] | null;
}

/** A stored feature in the contract's shape, leaving out the evidence it did not carry. */
export function toFeature(r: FeatureRow): AlertFeature {
  const out: AlertFeature = { feature_idx: r.feature_idx, score: r.score };
  if (r.feature !== null) out.feature = r.feature;
  if (r.severity !== null) out.severity = r.severity;
  if (r.value !== null) out.value = r.value;
  if (r.window !== null) out.window = r.window;
  if (r.typical_low !== null && r.typical_high !== null) {
    out.typical = { low: r.typical_low, high: r.typical_high };
  }
  if (r.statistic !== null) out.statistic = r.statistic;
  if (r.history != null) out.history = r.history;
  if (r.related != null) out.related = r.related;
  return out;
}

function toStored(row: AlertRow): StoredAlert {
  const incident =
    row.incident_id !== null && row.event !== null && row.incident_started_at !== null
      ? {
          incident_id: row.incident_id,
          event: row.event,
          incident_started_at: row.incident_started_at.toISOString(),
        }
      : {};
  return {
    alert_id: row.alert_id,
    stream_id: row.stream_id,
    timestamp: row.ts.toISOString(),
    frame_timestamp: row.frame_timestamp?.toISOString() ?? null,
    anomaly_detected: row.anomaly_detected,
    num_anomalous_features: row.num_anomalous_features,
    max_score: row.max_score,
    threshold: row.threshold,
    model_name: row.model_name,
    model_version: row.model_version,
    latency_ms: row.latency_ms,
    received_at: row.received_at.toISOString(),
    ...(row.max_severity === null ? {} : { max_severity: row.max_severity }),
    ...incident,
    ...(row.kind === null ? {} : { kind: row.kind }),
    silence_id: row.silence_id,
    anomalous_features: (row.features ?? []).map(toFeature),
  };
}

/**
 * The alert repository over a postgres.js client. Database errors leave it translated: connection
 * loss becomes `HttpError(503, "database_unavailable")`.
 *
 * @example const alerts = createAlertRepository(sql); await alerts.insert(alert); // "stored"
 */
export function createAlertRepository(
  db: Pick<Database, "sql" | "recover">,
  tracer: Tracer = trace.getTracer("backend"),
) {
  // Read per call: `recover()` replaces the client after a connection failure.
  const client = () => db.sql;
  const failed = dbErrorTranslator(db);

  /** Stores the alert and its features atomically; `"duplicate"` when the alert_id is known. */
  async function insert(alert: NewAlert): Promise<"stored" | "duplicate"> {
    const attributes = {
      "db.system.name": "postgresql",
      "db.operation.name": "INSERT",
      "db.collection.name": "alert",
    };
    return await tracer.startActiveSpan(
      "INSERT alert",
      { kind: SpanKind.CLIENT, attributes },
      async function storeAlertSpan(span) {
        try {
          const outcome = await insertInTransaction(alert);
          span.setAttribute("alert.outcome", outcome);
          return outcome;
        } catch (error) {
          span.recordException(error as Error);
          span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
          throw error;
        } finally {
          span.end();
        }
      },
    );
  }

  async function insertInTransaction(a: NewAlert): Promise<"stored" | "duplicate"> {
    const sql = client();
    const f = a.anomalous_features;
    const column = <T>(pick: (x: AlertFeature) => T | undefined) => f.map((x) => pick(x) ?? null);
    const incident = a.incident;
    // The incident's clock is the frame that raised the event (the alert's own time otherwise).
    const at = a.frame_timestamp ?? a.timestamp;
    const modelName = a.model_name ?? null;
    // The incident keeps the model of its latest alert and of its earliest, by (frame time,
    // alert_id): a total order, so the result does not depend on the arrival order.
    const latest = () =>
      sql`(EXCLUDED.last_alert_at, EXCLUDED.last_alert_id) > (incident.last_alert_at, incident.last_alert_id) OR incident.last_alert_id IS NULL`;
    const earliest = () =>
      sql`(EXCLUDED.first_alert_at, EXCLUDED.first_alert_id) < (incident.first_alert_at, incident.first_alert_id) OR incident.first_alert_id IS NULL`;
    // Its kind is that of its latest alert that carries one (same order; one without moves nothing).
    const latestKind = () =>
      sql`EXCLUDED.kind_alert_id IS NOT NULL AND ((EXCLUDED.kind_alert_at, EXCLUDED.kind_alert_id) > (incident.kind_alert_at, incident.kind_alert_id) OR incident.kind_alert_id IS NULL)`;
    // A sensor's evidence is its strongest alert's (severity, score; on a tie the earlier by frame
    // time, alert_id); its history and related sensors are those of its strongest alert that
    // carries them, ranked the same way on their own key: a `resolved` alert repeats the peak
    // without context, and must not erase it.
    const strongerPeak = () =>
      sql`((COALESCE(EXCLUDED.severity, -1), EXCLUDED.score) > (COALESCE(incident_sensor.severity, -1), incident_sensor.score) OR ((COALESCE(EXCLUDED.severity, -1), EXCLUDED.score) = (COALESCE(incident_sensor.severity, -1), incident_sensor.score) AND (EXCLUDED.peak_at, EXCLUDED.peak_alert_id) < (incident_sensor.peak_at, incident_sensor.peak_alert_id)))`;
    const strongerContext = () =>
      sql`(EXCLUDED.context_alert_id IS NOT NULL AND (incident_sensor.context_alert_id IS NULL OR (COALESCE(EXCLUDED.context_severity, -1), EXCLUDED.context_score) > (COALESCE(incident_sensor.context_severity, -1), incident_sensor.context_score) OR ((COALESCE(EXCLUDED.context_severity, -1), EXCLUDED.context_score) = (COALESCE(incident_sensor.context_severity, -1), incident_sensor.context_score) AND (EXCLUDED.context_at, EXCLUDED.context_alert_id) < (incident_sensor.context_at, incident_sensor.context_alert_id))))`;
    const hasContext = () => sql`(u.history IS NOT NULL OR u.related IS NOT NULL)`;
    // jsonb travels as text: postgres.js has no jsonb[] parameter.
    const json = (x: unknown) => (x === undefined ? undefined : JSON.stringify(x));
    let maxSeverity = a.max_severity ?? null;
    for (const x of f) {
      if (x.severity !== undefined && (maxSeverity === null || x.severity > maxSeverity)) {
        maxSeverity = x.severity;
      }
    }
    try {
      // One statement, hence one transaction, and no connection reserved across statements
      // (a reserved postgres.js 3.4.9 connection whose socket closes crashes the process,
      // porsager/postgres#1208). ON CONFLICT makes a concurrent repeat wait for the first
      // insert's commit, then insert nothing; everything else follows only a new alert row, so
      // the incident's counters move once per alert. The incident upsert only ever widens
      // (LEAST/GREATEST) and a sensor's evidence is replaced only by a stronger alert's (on a tie, the
      // earlier one), a total order: the rows converge whatever order the events arrive in.
      const [row] = await sql<{ inserted: number }[]>`
        WITH new_alert AS (
          INSERT INTO alert (alert_id, stream_id, ts, frame_timestamp, anomaly_detected,
            num_anomalous_features, max_score, threshold, model_version, model_name, latency_ms,
            incident_id, event, incident_started_at, max_severity, kind, silence_id)
          VALUES (${a.alert_id}, ${a.stream_id}, ${a.timestamp}, ${a.frame_timestamp},
            ${a.anomaly_detected}, ${a.num_anomalous_features}, ${a.max_score}, ${a.threshold},
            ${a.model_version}, ${modelName}, ${a.latency_ms}, ${incident?.incident_id ?? null}::uuid,
            ${incident?.event ?? null}, ${incident?.incident_started_at ?? null}, ${maxSeverity},
            ${a.kind ?? null}, ${a.silence_id ?? null}::uuid)
          ON CONFLICT (alert_id) DO NOTHING
          RETURNING alert_id
        ), u AS (
          SELECT * FROM unnest(${column((x) => x.feature_idx)}::int[],
            ${column((x) => x.score)}::float8[], ${column((x) => x.feature)}::text[],
            ${column((x) => x.severity)}::float8[], ${column((x) => x.value)}::float8[],
            ${column((x) => (x.window ? `{${x.window.join(",")}}` : undefined))}::text[],
            ${column((x) => x.typical?.low)}::float8[], ${column((x) => x.typical?.high)}::float8[],
            ${column((x) => x.statistic)}::text[], ${column((x) => json(x.history))}::text[],
            ${column((x) => json(x.related))}::text[])
          AS u(feature_idx, score, feature, severity, value, win, typical_low, typical_high,
            statistic, history, related)
        ), new_features AS (
          INSERT INTO alert_feature (alert_id, stream_id, ts, feature_idx, score, feature,
            severity, value, window_values, typical_low, typical_high, statistic, history, related)
          SELECT new_alert.alert_id, ${a.stream_id}, ${a.timestamp}, u.feature_idx, u.score,
            u.feature, u.severity, u.value, u.win::float8[], u.typical_low, u.typical_high,
            u.statistic, u.history::jsonb, u.related::jsonb
          FROM new_alert, u
        ), incident_row AS (
          INSERT INTO incident (incident_id, stream_id, started_at, last_alert_at, resolved_at,
            max_severity, max_score, flagged_sensors, model_name, model_version, last_alert_id,
            opened_model_name, opened_model_version, first_alert_at, first_alert_id, kind,
            kind_alert_at, kind_alert_id, silence_id)
          SELECT ${incident?.incident_id ?? null}::uuid, ${a.stream_id},
            ${incident?.incident_started_at ?? null}::timestamptz, ${at},
            ${incident?.event === "resolved" ? at : null}::timestamptz, ${maxSeverity}::float8,
            ${a.max_score}, ${a.num_anomalous_features}, ${modelName}::text,
            ${a.model_version}::text, ${a.alert_id}::uuid, ${modelName}::text,
            ${a.model_version}::text, ${at}::timestamptz, ${a.alert_id}::uuid,
            ${a.kind ?? "process"}, ${a.kind ? at : null}::timestamptz,
            ${a.kind ? a.alert_id : null}::uuid, ${a.silence_id ?? null}::uuid
          FROM new_alert WHERE ${incident?.incident_id ?? null}::uuid IS NOT NULL
          ON CONFLICT (incident_id) DO UPDATE SET
            started_at = LEAST(incident.started_at, EXCLUDED.started_at),
            last_alert_at = GREATEST(incident.last_alert_at, EXCLUDED.last_alert_at),
            resolved_at = GREATEST(incident.resolved_at, EXCLUDED.resolved_at),
            -- The engine's own end after all: the backend's closing (0023) was not needed.
            superseded_by = CASE WHEN EXCLUDED.resolved_at IS NOT NULL THEN NULL
              ELSE incident.superseded_by END,
            max_severity = GREATEST(incident.max_severity, EXCLUDED.max_severity),
            max_score = GREATEST(incident.max_score, EXCLUDED.max_score),
            alerts = incident.alerts + 1,
            flagged_sensors = GREATEST(incident.flagged_sensors, EXCLUDED.flagged_sensors),
            model_name = CASE WHEN ${latest()} THEN EXCLUDED.model_name ELSE incident.model_name END,
            model_version = CASE WHEN ${latest()}
              THEN EXCLUDED.model_version ELSE incident.model_version END,
            last_alert_id = CASE WHEN ${latest()}
              THEN EXCLUDED.last_alert_id ELSE incident.last_alert_id END,
            opened_model_name = CASE WHEN ${earliest()}
              THEN EXCLUDED.opened_model_name ELSE incident.opened_model_name END,
            opened_model_version = CASE WHEN ${earliest()}
              THEN EXCLUDED.opened_model_version ELSE incident.opened_model_version END,
            first_alert_at = CASE WHEN ${earliest()}
              THEN EXCLUDED.first_alert_at ELSE incident.first_alert_at END,
            first_alert_id = CASE WHEN ${earliest()}
              THEN EXCLUDED.first_alert_id ELSE incident.first_alert_id END,
            kind = CASE WHEN ${latestKind()} THEN EXCLUDED.kind ELSE incident.kind END,
            kind_alert_at = CASE WHEN ${latestKind()}
              THEN EXCLUDED.kind_alert_at ELSE incident.kind_alert_at END,
            kind_alert_id = CASE WHEN ${latestKind()}
              THEN EXCLUDED.kind_alert_id ELSE incident.kind_alert_id END,
            -- The silence its latest alert fell under: silenced while that one still holds
            -- (judged against the clock when read, README.md "Silences"); each alert keeps the
            -- silence that covered it.
            silence_id = CASE WHEN ${latest()}
              THEN EXCLUDED.silence_id ELSE incident.silence_id END
          RETURNING incident_id, started_at
        ), sensors AS (
          INSERT INTO incident_sensor (incident_id, feature_idx, feature, severity, score, value,
            window_values, typical_low, typical_high, statistic, history, related, peak_at,
            peak_alert_id, started_at, context_severity, context_score, context_at,
            context_alert_id)
          SELECT incident_row.incident_id, u.feature_idx, u.feature, u.severity, u.score, u.value,
            u.win::float8[], u.typical_low, u.typical_high, u.statistic, u.history::jsonb,
            u.related::jsonb, ${at},
            ${a.alert_id}::uuid, ${incident?.incident_started_at ?? null}::timestamptz,
            CASE WHEN ${hasContext()} THEN u.severity END,
            CASE WHEN ${hasContext()} THEN u.score END,
            CASE WHEN ${hasContext()} THEN ${at}::timestamptz END,
            CASE WHEN ${hasContext()} THEN ${a.alert_id}::uuid END
          FROM incident_row, u
          ORDER BY u.feature_idx
          ON CONFLICT (incident_id, feature_idx) DO UPDATE SET
            feature = CASE WHEN ${strongerPeak()} THEN EXCLUDED.feature ELSE incident_sensor.feature END,
            severity = CASE WHEN ${strongerPeak()} THEN EXCLUDED.severity ELSE incident_sensor.severity END,
            score = CASE WHEN ${strongerPeak()} THEN EXCLUDED.score ELSE incident_sensor.score END,
            value = CASE WHEN ${strongerPeak()} THEN EXCLUDED.value ELSE incident_sensor.value END,
            window_values = CASE WHEN ${strongerPeak()}
              THEN EXCLUDED.window_values ELSE incident_sensor.window_values END,
            typical_low = CASE WHEN ${strongerPeak()}
              THEN EXCLUDED.typical_low ELSE incident_sensor.typical_low END,
            typical_high = CASE WHEN ${strongerPeak()}
              THEN EXCLUDED.typical_high ELSE incident_sensor.typical_high END,
            statistic = CASE WHEN ${strongerPeak()}
              THEN EXCLUDED.statistic ELSE incident_sensor.statistic END,
            peak_at = CASE WHEN ${strongerPeak()} THEN EXCLUDED.peak_at ELSE incident_sensor.peak_at END,
            peak_alert_id = CASE WHEN ${strongerPeak()}
              THEN EXCLUDED.peak_alert_id ELSE incident_sensor.peak_alert_id END,
            history = CASE WHEN ${strongerContext()}
              THEN EXCLUDED.history ELSE incident_sensor.history END,
            related = CASE WHEN ${strongerContext()}
              THEN EXCLUDED.related ELSE incident_sensor.related END,
            context_severity = CASE WHEN ${strongerContext()}
              THEN EXCLUDED.context_severity ELSE incident_sensor.context_severity END,
            context_score = CASE WHEN ${strongerContext()}
              THEN EXCLUDED.context_score ELSE incident_sensor.context_score END,
            context_at = CASE WHEN ${strongerContext()}
              THEN EXCLUDED.context_at ELSE incident_sensor.context_at END,
            context_alert_id = CASE WHEN ${strongerContext()}
              THEN EXCLUDED.context_alert_id ELSE incident_sensor.context_alert_id END,
            started_at = LEAST(incident_sensor.started_at, EXCLUDED.started_at)
          WHERE ${strongerPeak()} OR ${strongerContext()}
            OR EXCLUDED.started_at < incident_sensor.started_at
        ), events AS (
          INSERT INTO incident_event (alert_id, incident_id, event, event_at, num_sensors,
            max_severity)
          SELECT ${a.alert_id}::uuid, incident_row.incident_id, ${incident?.event ?? null},
            ${at}, ${a.num_anomalous_features}, ${maxSeverity}::float8
          FROM incident_row
        )
        SELECT count(*)::int AS inserted FROM new_alert`;
      return row.inserted === 1 ? "stored" : "duplicate";
    } catch (error) {
      try {
        return failed(error);
      } catch (translated) {
        if (translated instanceof DuplicateError) return "duplicate";
        throw translated;
      }
    }
  }

  const topFeatures = (sql: Database["sql"], n: number) => sql`
    LEFT JOIN LATERAL (
      SELECT json_agg(json_build_object('feature_idx', t.feature_idx, 'score', t.score,
        'feature', t.feature, 'severity', t.severity, 'value', t.value,
        'window', t.window_values, 'typical_low', t.typical_low,
        'typical_high', t.typical_high, 'statistic', t.statistic, 'history', t.history,
        'related', t.related)
        ORDER BY t.severity DESC NULLS LAST, t.score DESC, t.feature_idx) AS features
      FROM (SELECT * FROM alert_feature af WHERE af.alert_id = a.alert_id
        ORDER BY severity DESC NULLS LAST, score DESC, feature_idx LIMIT ${n}) t
    ) f ON true`;

  /** One alert with every stored feature, or `undefined`. */
  async function get(alertId: string): Promise<StoredAlert | undefined> {
    const sql = client();
    const rows = await sql<AlertRow[]>`
      SELECT a.*, f.features FROM alert a ${topFeatures(sql, 1_000_000)}
      WHERE a.alert_id = ${alertId}`.catch(failed);
    return rows[0] ? toStored(rows[0]) : undefined;
  }

  /** Alerts newest first, one page after `cursor`. */
  async function list(q: AlertFilter): Promise<AlertPage> {
    const sql = client();
    const byFeature = q.featureIdx !== undefined;
    // With a feature filter the (feature_idx, ts, alert_id) index drives the scan.
    const k = byFeature ? sql`af` : sql`a`;
    const rows = await sql<AlertRow[]>`
      SELECT a.*, f.features
      FROM ${byFeature ? sql`alert_feature af JOIN alert a USING (alert_id)` : sql`alert a`}
      ${topFeatures(sql, q.featuresPerAlert)}
      WHERE true
      ${byFeature ? sql`AND af.feature_idx = ${q.featureIdx!}` : sql``}
      ${q.streamId !== undefined ? sql`AND ${k}.stream_id = ${q.streamId}` : sql``}
      ${q.from ? sql`AND ${k}.ts >= ${q.from}` : sql``}
      ${q.to ? sql`AND ${k}.ts < ${q.to}` : sql``}
      ${q.minScore !== undefined ? sql`AND ${byFeature ? sql`af.score` : sql`a.max_score`} >= ${q.minScore}` : sql``}
      ${q.cursor ? sql`AND (${k}.ts, ${k}.alert_id) < (${q.cursor.ts}, ${q.cursor.alertId}::uuid)` : sql``}
      ORDER BY ${k}.ts DESC, ${k}.alert_id DESC
      LIMIT ${q.limit + 1}`.catch(failed);
    const more = rows.length > q.limit;
    const page = rows.slice(0, q.limit);
    const last = page.at(-1);
    return {
      alerts: page.map(toStored),
      next_cursor: more && last ? encodeCursor({ ts: last.ts, alertId: last.alert_id }) : null,
    };
  }

  /** Alerts per stream and the most frequently anomalous features in [from, to). */
  async function summary(range: { from?: Date; to?: Date; top: number }): Promise<AlertSummary> {
    const sql = client();
    const within = sql`
      ${range.from ? sql`AND ts >= ${range.from}` : sql``}
      ${range.to ? sql`AND ts < ${range.to}` : sql``}`;
    const streams = await sql<
      { stream_id: string; alerts: number; max_score: number; last: Date }[]
    >`
      SELECT stream_id, count(*)::int AS alerts, max(max_score) AS max_score, max(ts) AS last
      FROM alert WHERE true ${within}
      GROUP BY stream_id ORDER BY alerts DESC, stream_id COLLATE "C"`.catch(failed);
    // Each feature's latest name in the range (max(feature) would pick by the database's
    // collation, an old name of a renamed sensor as often as its current one): for the top
    // features only, each one read newest first on the (feature_idx, ts, alert_id) index.
    const features = await sql<
      { feature_idx: number; feature: string | null; alerts: number; max_score: number }[]
    >`
      SELECT t.feature_idx, n.feature, t.alerts, t.max_score
      FROM (
        SELECT feature_idx, count(*)::int AS alerts, max(score) AS max_score
        FROM alert_feature WHERE true ${within}
        GROUP BY feature_idx ORDER BY alerts DESC, max_score DESC, feature_idx
        LIMIT ${range.top}
      ) t
      LEFT JOIN LATERAL (
        SELECT feature FROM alert_feature
        WHERE feature_idx = t.feature_idx AND feature IS NOT NULL ${within}
        ORDER BY ts DESC, alert_id DESC LIMIT 1
      ) n ON true
      ORDER BY t.alerts DESC, t.max_score DESC, t.feature_idx`.catch(failed);
    return {
      from: range.from?.toISOString() ?? null,
      to: range.to?.toISOString() ?? null,
      total_alerts: streams.reduce((n, s) => n + s.alerts, 0),
      streams: streams.map((s) => ({
        stream_id: s.stream_id,
        alerts: s.alerts,
        max_score: s.max_score,
        last_alert_at: s.last.toISOString(),
      })),
      top_features: features.map((f) => ({ ...f })),
    };
  }

  return { insert, get, list, summary };
}
