// Finds an incident's similar past incidents: earlier ones of the same model whose strongest sensors overlap its own.
import * as v from "valibot";
import type { FaultKind } from "../../contracts/alert.ts";
import { intParam } from "../alerts/_query_params.ts";
import type { Database } from "../db/database.ts";
import type { IncidentState, Verdict, VerdictKind } from "./incident_types.ts";

/**
 * How many of an incident's strongest sensors (by severity, then score, then feature index: the
 * order the incident page lists them) stand for it when incidents are compared. Few, because
 * among hundreds of flagged sensors the weaker ones are mostly the process echoing the cause.
 */
export const SIMILAR_TOP_SENSORS = 5;

/**
 * How many earlier incidents, newest first, are looked at as candidates at most: those that
 * flagged one of the target's strongest sensors (at any strength). Each candidate costs a few
 * index reads (its own strongest sensors, its verdict); without a bound a sensor flagged in most
 * incidents made every incident page read all of them (seconds on a year of history). Older
 * incidents than the newest this many are not found, however similar.
 */
export const SIMILAR_CANDIDATES = 1000;

/** `GET /incidents/:id/similar`: how many to list, and how many strongest sensors they must share. */
export const similarQuerySchema = v.object({
  limit: v.optional(intParam(1, 100), "10"),
  min_shared: v.optional(intParam(1, SIMILAR_TOP_SENSORS), "1"),
});

export interface SensorRef {
  feature_idx: number;
  feature: string | null;
}

/** One earlier incident like the one asked about: when, how long, what people concluded. */
export interface SimilarIncident {
  incident_id: string;
  stream_id: string;
  state: IncidentState;
  kind: FaultKind;
  started_at: string;
  resolved_at: string | null;
  /** From start to resolution; null while it is still open. */
  duration_ms: number | null;
  max_severity: number | null;
  model_name: string | null;
  model_version: string | null;
  /** Sensors among the strongest of both incidents, strongest (in this one) first. */
  shared: SensorRef[];
  /** |shared| / |union of both strongest sets|: 1 when the strongest sensors are the same. */
  overlap: number;
  /** The current verdict (with its cause and note), null before the first. */
  verdict: Verdict | null;
}

export interface SimilarIncidents {
  incident_id: string;
  model_name: string | null;
  /** The strongest sensors this incident is compared by. */
  sensors: SensorRef[];
  /** Newest first. */
  similar: SimilarIncident[];
}

interface Row {
  incident_id: string;
  stream_id: string;
  kind: FaultKind;
  started_at: Date;
  resolved_at: Date | null;
  max_severity: number | null;
  model_name: string | null;
  model_version: string | null;
  shared: SensorRef[];
  union_size: number;
  verdict: VerdictKind | null;
  cause: string | null;
  note: string | null;
  given_by: string | null;
  given_at: Date | null;
}

/**
 * Earlier incidents similar to `incidentId`, newest first, or `undefined` when there is no such
 * incident. Similar means: started strictly before it; scored by the same model (same
 * `model_name`; incidents whose alerts named no model compare within their stream); and at least
 * `minShared` sensors are among the {@link SIMILAR_TOP_SENSORS} strongest of both. Only the
 * newest `candidates` earlier incidents that flagged one of its strongest sensors are looked at
 * ({@link SIMILAR_CANDIDATES}), so the cost of a page does not grow with the history.
 *
 * @example await findSimilarIncidents(sql, id, { limit: 10, minShared: 1 }); // { similar: [...] }
 */
export async function findSimilarIncidents(
  sql: Database["sql"],
  incidentId: string,
  q: {
    limit: number;
    minShared: number;
    /** Candidates looked at, newest first (default {@link SIMILAR_CANDIDATES}). */
    candidates?: number;
  },
): Promise<SimilarIncidents | undefined> {
  const candidates = q.candidates ?? SIMILAR_CANDIDATES;
  const k = SIMILAR_TOP_SENSORS;
  const [target] = await sql<
    { incident_id: string; model_name: string | null; sensors: SensorRef[] | null }[]
  >`
    SELECT i.incident_id, i.model_name, (
      SELECT json_agg(json_build_object('feature_idx', t.feature_idx, 'feature', t.feature)
        ORDER BY t.severity DESC NULLS LAST, t.score DESC, t.feature_idx)
      FROM (SELECT * FROM incident_sensor s WHERE s.incident_id = i.incident_id
        ORDER BY severity DESC NULLS LAST, score DESC, feature_idx LIMIT ${k}) t
    ) AS sensors
    FROM incident i WHERE i.incident_id = ${incidentId}`;
  if (!target) return undefined;
  const sensors = target.sensors ?? [];
  const top = sensors.map((s) => s.feature_idx);
  // Candidates: the newest `candidates` incidents that started before the target and flagged
  // one of its strongest sensors at all (the newest overall are among the newest of their own
  // sensor, so `candidates` per sensor are enough). Each sensor's are walked newest first one
  // row at a time, keyset on the (feature_idx, started_at DESC, incident_id DESC) index of 0016:
  // asked for `candidates` rows at once, the planner, which cannot tell a sensor flagged in half
  // of all incidents from a rare one, often reads every row of the sensor (a bitmap scan, then a
  // sort), which is the unbounded read this replaces. A sensor's started_at is its incident's
  // when the engine sends one start per incident, as ours does; the test below is on the
  // incident's own. Each candidate's strongest few then come in order from the (incident_id,
  // severity, score, feature_idx) index.
  const rows = top.length
    ? await sql<Row[]>`
        WITH RECURSIVE target AS (
          SELECT incident_id, stream_id, model_name, started_at FROM incident
          WHERE incident_id = ${incidentId}
        ), walk AS (
          SELECT f.feature_idx, c.started_at, c.incident_id, 1 AS n
          FROM target, unnest(${top}::int[]) AS f(feature_idx)
          CROSS JOIN LATERAL (
            SELECT s.started_at, s.incident_id FROM incident_sensor s
            WHERE s.feature_idx = f.feature_idx AND s.started_at < target.started_at
            ORDER BY s.started_at DESC, s.incident_id DESC LIMIT 1
          ) c
          UNION ALL
          SELECT w.feature_idx, c.started_at, c.incident_id, w.n + 1
          FROM walk w CROSS JOIN LATERAL (
            SELECT s.started_at, s.incident_id FROM incident_sensor s
            WHERE s.feature_idx = w.feature_idx
              AND (s.started_at, s.incident_id) < (w.started_at, w.incident_id)
            ORDER BY s.started_at DESC, s.incident_id DESC LIMIT 1
          ) c
          WHERE w.n < ${candidates}
        ), candidates AS (
          SELECT incident_id FROM walk GROUP BY incident_id
          ORDER BY max(started_at) DESC, incident_id DESC
          LIMIT ${candidates}
        )
        SELECT i.incident_id, i.stream_id, i.kind, i.started_at, i.resolved_at, i.max_severity,
          i.model_name, i.model_version, m.shared, m.union_size, vd.verdict, vd.cause, vd.note,
          vd.given_by, vd.given_at
        FROM candidates JOIN incident i USING (incident_id) CROSS JOIN target
        CROSS JOIN LATERAL (
          SELECT coalesce(json_agg(json_build_object('feature_idx', ct.feature_idx,
              'feature', ct.feature) ORDER BY array_position(${top}::int[], ct.feature_idx))
              FILTER (WHERE ct.feature_idx = ANY(${top}::int[])), '[]') AS shared,
            count(*) FILTER (WHERE ct.feature_idx = ANY(${top}::int[]))::int AS n_shared,
            (count(*) + ${top.length}
              - count(*) FILTER (WHERE ct.feature_idx = ANY(${top}::int[])))::int AS union_size
          FROM (SELECT feature_idx, feature FROM incident_sensor x
            WHERE x.incident_id = i.incident_id
            ORDER BY severity DESC NULLS LAST, score DESC, feature_idx LIMIT ${k}) ct
        ) m
        LEFT JOIN LATERAL (
          SELECT * FROM incident_verdict w WHERE w.incident_id = i.incident_id
          ORDER BY w.verdict_id DESC LIMIT 1
        ) vd ON true
        WHERE i.started_at < target.started_at
          AND (i.model_name = target.model_name
            OR (i.model_name IS NULL AND target.model_name IS NULL
              AND i.stream_id = target.stream_id))
          AND m.n_shared >= ${q.minShared}
        ORDER BY i.started_at DESC, i.incident_id DESC
        LIMIT ${q.limit}`
    : [];
  return {
    incident_id: target.incident_id,
    model_name: target.model_name,
    sensors,
    similar: rows.map(
      (r): SimilarIncident => ({
        incident_id: r.incident_id,
        stream_id: r.stream_id,
        state: r.resolved_at === null ? "open" : "resolved",
        kind: r.kind,
        started_at: r.started_at.toISOString(),
        resolved_at: r.resolved_at?.toISOString() ?? null,
        duration_ms:
          r.resolved_at === null ? null : r.resolved_at.getTime() - r.started_at.getTime(),
        max_severity: r.max_severity,
        model_name: r.model_name,
        model_version: r.model_version,
        shared: r.shared,
        overlap: r.union_size > 0 ? r.shared.length / r.union_size : 0,
        verdict:
          r.verdict === null
            ? null
            : {
                verdict: r.verdict,
                cause: r.cause,
                note: r.note,
                by: r.given_by!,
                at: r.given_at!.toISOString(),
              },
      }),
    ),
  };
}
