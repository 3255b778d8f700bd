// Stores and reads alerts with postgres.js: one transaction per alert, idempotent on alert_id.
import { SpanKind, SpanStatusCode, type Tracer, trace } from "@opentelemetry/api";
import type { Database } from "../db/database.ts";
import { DuplicateError, translateDbError } from "../db/db_errors.ts";
import { encodeCursor } from "./_cursor.ts";
import type { AlertFilter, AlertPage, AlertSummary, NewAlert, StoredAlert } from "./alert_types.ts";

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
  latency_ms: number | null;
  received_at: Date;
  features: { feature_idx: number; score: number; feature: string | null }[] | null;
}

function toStored(row: AlertRow): StoredAlert {
  return {
    alert_id: row.alert_id,
    stream_id: row.stream_id,
    timestamp: row.ts.toISOString(),
    frame_timestamp: row.frame_timestamp?.toISOString() ?? null,
    anomaly_detected: row.anomaly_detected,
    num_anomalous_features: row.num_anomalous_features,
    max_score: row.max_score,
    threshold: row.threshold,
    model_version: row.model_version,
    latency_ms: row.latency_ms,
    received_at: row.received_at.toISOString(),
    anomalous_features: (row.features ?? []).map(({ feature_idx, score, feature }) =>
      feature === null ? { feature_idx, score } : { feature_idx, score, feature },
    ),
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
  const failed = (error: unknown): never => {
    try {
      return translateDbError(error);
    } catch (translated) {
      if ((translated as { status?: number }).status === 503) db.recover();
      throw translated;
    }
  };

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
    try {
      // One statement, hence one transaction, and no connection reserved across statements
      // (a reserved postgres.js 3.4.9 connection whose socket closes crashes the process,
      // porsager/postgres#1208). ON CONFLICT makes a concurrent repeat wait for the first
      // insert's commit, then insert nothing; the features follow only a new alert row.
      const [row] = await sql<{ inserted: number }[]>`
        WITH new_alert AS (
          INSERT INTO alert (alert_id, stream_id, ts, frame_timestamp, anomaly_detected,
            num_anomalous_features, max_score, threshold, model_version, latency_ms)
          VALUES (${a.alert_id}, ${a.stream_id}, ${a.timestamp}, ${a.frame_timestamp},
            ${a.anomaly_detected}, ${a.num_anomalous_features}, ${a.max_score}, ${a.threshold},
            ${a.model_version}, ${a.latency_ms})
          ON CONFLICT (alert_id) DO NOTHING
          RETURNING alert_id
        ), new_features AS (
          INSERT INTO alert_feature (alert_id, stream_id, ts, feature_idx, score, feature)
          SELECT new_alert.alert_id, ${a.stream_id}, ${a.timestamp}, u.*
          FROM new_alert, unnest(${f.map((x) => x.feature_idx)}::int[],
            ${f.map((x) => x.score)}::float8[], ${f.map((x) => x.feature ?? null)}::text[]) AS u
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
        'feature', t.feature) ORDER BY t.score DESC, t.feature_idx) AS features
      FROM (SELECT feature_idx, score, feature FROM alert_feature af
        WHERE af.alert_id = a.alert_id ORDER BY score DESC, feature_idx LIMIT ${n}) t
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
      GROUP BY stream_id ORDER BY alerts DESC, stream_id`.catch(failed);
    const features = await sql<
      { feature_idx: number; feature: string | null; alerts: number; max_score: number }[]
    >`
      SELECT feature_idx, max(feature) AS feature, count(*)::int AS alerts, max(score) AS max_score
      FROM alert_feature WHERE true ${within}
      GROUP BY feature_idx ORDER BY alerts DESC, max_score DESC, feature_idx
      LIMIT ${range.top}`.catch(failed);
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
