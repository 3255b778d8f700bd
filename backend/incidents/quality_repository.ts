// Reads how operators judged incidents: per week, stream and sensor by current verdict, and the sensors behind false positives.
import type { Database } from "../db/database.ts";
import { dbErrorTranslator } from "../db/db_errors.ts";

/** How many incidents carry each current verdict; `none`: no verdict yet. */
export interface VerdictCounts {
  incidents: number;
  true_positive: number;
  false_positive: number;
  maintenance: number;
  sensor_fault: number;
  none: number;
}

/** Counts with the share of judged incidents (those with a verdict) judged false positive. */
export interface JudgedCounts extends VerdictCounts {
  judged: number;
  /** false_positive / judged; null while nothing is judged. */
  false_positive_share: number | null;
}

/** A sensor that raised false positives on one stream (the scope a silence would take). */
export interface FalsePositiveSensor {
  stream_id: string;
  feature_idx: number;
  /** The sensor's latest name as alerts gave it; null when they gave none. */
  feature: string | null;
  /**
   * Every name silences matched the sensor by in the range, sorted: each name alerts gave it
   * (a renamed sensor has several), and `feature_<idx>` where they gave none. Also names no
   * silence glob can hold (empty, with control characters): what the sensor was called; the
   * Quality page's Mute leaves those out and says so.
   */
  names: string[];
  false_positives: number;
  /** Incidents on this stream that flagged the sensor, whatever their verdict. */
  incidents: number;
  last_false_positive_at: string;
}

/** What the Quality page shows for incidents started in [from, to). */
export interface QualityReport {
  from: string;
  to: string;
  weeks: number;
  stream_id: string | null;
  totals: JudgedCounts;
  /** One entry per week (Monday 00:00 UTC), oldest first, empty weeks included. */
  weekly: (VerdictCounts & { week_start: string })[];
  /** Streams with incidents, most incidents first. */
  streams: (JudgedCounts & { stream_id: string })[];
  /**
   * The sensors flagged in the most incidents, with how those incidents were judged; `feature`:
   * the sensor's latest name.
   */
  sensors: (VerdictCounts & { feature_idx: number; feature: string | null })[];
  /** The (stream, sensor) pairs flagged in the most false positives. */
  false_positive_sensors: FalsePositiveSensor[];
}

export interface QualityQuery {
  weeks: number;
  /** The report ends with the week holding this instant. */
  now: Date;
  streamId?: string;
  /** How many sensors each of the two sensor tables holds at most. */
  sensors: number;
}

const WEEK_MS = 7 * 86_400_000;
const KINDS = ["true_positive", "false_positive", "maintenance", "sensor_fault"] as const;

/** Monday 00:00 UTC of the week holding `at`. */
export function weekStart(at: Date): Date {
  const day = new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate()));
  // getUTCDay: Sunday 0 … Saturday 6; weeks start on Monday (ISO 8601).
  return new Date(day.getTime() - ((day.getUTCDay() + 6) % 7) * 86_400_000);
}

function judged<T extends VerdictCounts>(c: T): T & JudgedCounts {
  const n = c.incidents - c.none;
  return { ...c, judged: n, false_positive_share: n === 0 ? null : c.false_positive / n };
}

function counts(row: Partial<VerdictCounts>): VerdictCounts {
  return {
    incidents: row.incidents ?? 0,
    true_positive: row.true_positive ?? 0,
    false_positive: row.false_positive ?? 0,
    maintenance: row.maintenance ?? 0,
    sensor_fault: row.sensor_fault ?? 0,
    none: row.none ?? 0,
  };
}

/**
 * The quality repository over a postgres.js client: aggregates of incidents by their current
 * verdict (the latest row of `incident_verdict`; superseded verdicts do not count).
 *
 * @example const quality = createQualityRepository(db); await quality.report({ weeks: 12, now: new Date(), sensors: 10 });
 */
export function createQualityRepository(db: Pick<Database, "sql" | "recover">) {
  const failed = dbErrorTranslator(db);

  async function report(q: QualityQuery): Promise<QualityReport> {
    const sql = db.sql;
    const to = new Date(weekStart(q.now).getTime() + WEEK_MS);
    const from = new Date(to.getTime() - q.weeks * WEEK_MS);
    // The incidents in range with their current verdict, as a CTE every query below starts with.
    // MATERIALIZED: inlined, the latest-verdict subquery would run once per incident_sensor row
    // joined to it rather than once per incident.
    const judgedIncidents = sql`
      WITH cur AS MATERIALIZED (
        SELECT i.incident_id, i.stream_id, i.started_at,
          coalesce((SELECT w.verdict FROM incident_verdict w WHERE w.incident_id = i.incident_id
            ORDER BY w.verdict_id DESC LIMIT 1), 'none') AS verdict
        FROM incident i
        WHERE i.started_at >= ${from} AND i.started_at < ${to}
        ${q.streamId !== undefined ? sql`AND i.stream_id = ${q.streamId}` : sql``}
      )`;
    const tally = sql`count(*)::int AS incidents,
      count(*) FILTER (WHERE c.verdict = 'true_positive')::int AS true_positive,
      count(*) FILTER (WHERE c.verdict = 'false_positive')::int AS false_positive,
      count(*) FILTER (WHERE c.verdict = 'maintenance')::int AS maintenance,
      count(*) FILTER (WHERE c.verdict = 'sensor_fault')::int AS sensor_fault,
      count(*) FILTER (WHERE c.verdict = 'none')::int AS none`;
    // The sensors of those incidents. Joined on incident_id alone, the planner reads all of
    // incident_sensor (a hash join over every row ever stored); bounded by its copied started_at
    // it reads only the range, through incident_sensor_started_idx. Only from below: a sensor's
    // started_at is the earliest of the alerts that flagged it, its incident's the earliest of
    // all its alerts, so it is never earlier than its incident's (and may be later, so an upper
    // bound could lose a sensor of an incident that started just before `to`).
    const sensorsInRange = sql`
      FROM cur c JOIN incident_sensor s ON s.incident_id = c.incident_id
        AND s.started_at >= ${from}`;
    // Each sensor's names are counted first, one row per name (with its latest peak), then
    // summed per sensor: its latest name is that of the latest peak (the alert a row's name came
    // from; ties by name), null when none had one. max(feature) would pick by the database's
    // collation, an old name as often as the current one. Ordering every row of a sensor instead
    // (array_agg(... ORDER BY peak_at)) made the report about twice as slow with 1.6 million
    // rows in range; one row per name first, it takes as long as the counts alone.
    const latestName = sql`(array_agg(n.feature ORDER BY n.last_peak DESC,
      n.feature COLLATE "C" DESC) FILTER (WHERE n.feature IS NOT NULL))[1]`;
    const summed = sql`sum(n.incidents)::int AS incidents,
      sum(n.true_positive)::int AS true_positive, sum(n.false_positive)::int AS false_positive,
      sum(n.maintenance)::int AS maintenance, sum(n.sensor_fault)::int AS sensor_fault,
      sum(n.none)::int AS none`;
    // Ties on text are broken in byte order (COLLATE "C"): the database's collation (en_US, ICU)
    // would order them, and so cut them at a LIMIT, differently from one server to another.

    const weekly = await sql<(VerdictCounts & { week: number })[]>`
      ${judgedIncidents}
      SELECT floor(extract(epoch FROM c.started_at - ${from}::timestamptz) / ${WEEK_MS / 1000})::int
        AS week, ${tally}
      FROM cur c GROUP BY 1`.catch(failed);
    const streams = await sql<(VerdictCounts & { stream_id: string })[]>`
      ${judgedIncidents}
      SELECT c.stream_id, ${tally} FROM cur c
      GROUP BY c.stream_id ORDER BY incidents DESC, c.stream_id COLLATE "C"`.catch(failed);
    const sensors = await sql<(VerdictCounts & { feature_idx: number; feature: string | null })[]>`
      ${judgedIncidents}
      SELECT n.feature_idx, ${latestName} AS feature, ${summed}
      FROM (
        SELECT s.feature_idx, s.feature, max(s.peak_at) AS last_peak, ${tally}
        ${sensorsInRange}
        GROUP BY s.feature_idx, s.feature
      ) n
      GROUP BY n.feature_idx ORDER BY incidents DESC, false_positive DESC, n.feature_idx
      LIMIT ${q.sensors}`.catch(failed);
    const noisy = await sql<
      (Omit<FalsePositiveSensor, "last_false_positive_at"> & { last_fp_at: Date })[]
    >`
      ${judgedIncidents}
      SELECT n.stream_id, n.feature_idx, ${latestName} AS feature,
        array_agg(coalesce(n.feature, 'feature_' || n.feature_idx)) AS names,
        sum(n.incidents)::int AS incidents, sum(n.false_positive)::int AS false_positives,
        max(n.last_fp_at) AS last_fp_at
      FROM (
        SELECT c.stream_id, s.feature_idx, s.feature, max(s.peak_at) AS last_peak,
          count(*) AS incidents,
          count(*) FILTER (WHERE c.verdict = 'false_positive') AS false_positive,
          max(c.started_at) FILTER (WHERE c.verdict = 'false_positive') AS last_fp_at
        ${sensorsInRange}
        GROUP BY c.stream_id, s.feature_idx, s.feature
      ) n
      GROUP BY n.stream_id, n.feature_idx
      HAVING sum(n.false_positive) > 0
      ORDER BY false_positives DESC, last_fp_at DESC, n.stream_id COLLATE "C", n.feature_idx
      LIMIT ${q.sensors}`.catch(failed);

    const byWeek = new Map(weekly.map((w) => [w.week, w]));
    const weeks = Array.from({ length: q.weeks }, (_, n) => ({
      week_start: new Date(from.getTime() + n * WEEK_MS).toISOString(),
      ...counts(byWeek.get(n) ?? {}),
    }));
    const total = counts({});
    for (const w of weeks) {
      total.incidents += w.incidents;
      total.none += w.none;
      for (const k of KINDS) total[k] += w[k];
    }
    return {
      from: from.toISOString(),
      to: to.toISOString(),
      weeks: q.weeks,
      stream_id: q.streamId ?? null,
      totals: judged(total),
      weekly: weeks,
      streams: streams.map((s) => judged({ stream_id: s.stream_id, ...counts(s) })),
      sensors: sensors.map((s) => ({
        feature_idx: s.feature_idx,
        feature: s.feature,
        ...counts(s),
      })),
      false_positive_sensors: noisy.map((n) => ({
        stream_id: n.stream_id,
        feature_idx: n.feature_idx,
        feature: n.feature,
        names: [...new Set(n.names)].sort(),
        false_positives: n.false_positives,
        incidents: n.incidents,
        last_false_positive_at: new Date(n.last_fp_at).toISOString(),
      })),
    };
  }

  return { report };
}

export type QualityRepository = ReturnType<typeof createQualityRepository>;
