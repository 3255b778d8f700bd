// One flagged sensor on the Incident page: its history chart (onset, typical band, running level) and its related sensors.
import type { History, RelatedSensor } from "../../contracts/alert.ts";
import type { IncidentSensor } from "../incidents/incident_types.ts";
import { num, utc } from "./format.ts";
import { chartSeries, rangeOf, readingMs } from "./history_series.ts";

/** Points a flagged sensor's chart gets at most; its related sensors' small charts get fewer. */
const CHART_POINTS = 2000;
const SMALL_CHART_POINTS = 400;
/** A related sensor within this many (robust) standard deviations of its training readings stayed put. */
const MOVED_SD = 2;

export function sensorName(s: { feature?: string | null; feature_idx: number }): string {
  return s.feature ?? `#${s.feature_idx}`;
}

const signed = (x: number) => `${x > 0 ? "+" : x < 0 ? "−" : ""}${num(Math.abs(x), 3)}`;

/** What the history says in words: the chart's text alternative, and a summary for a quick read. */
function historySummary(s: IncidentSensor): string {
  const h = s.history!;
  const before = rangeOf(h.values, 0, h.onset);
  const after = rangeOf(h.values, h.onset, h.values.length);
  const onsetAt = utc(new Date(readingMs(h, h.onset)).toISOString());
  const parts = [`onset at ${onsetAt} (reading ${h.onset + 1} of ${h.values.length})`];
  if (before) parts.push(`before it ${num(before[0])} to ${num(before[1])}`);
  if (after) parts.push(`from it ${num(after[0])} to ${num(after[1])}`);
  return parts.join("; ");
}

/** What a related sensor's small chart draws: its readings on its flagged sensor's history times. */
interface RelatedSeries {
  t: number[];
  /** `null` where no reading was kept: a gap in the line. */
  values: (number | null)[];
  onset: number;
  readings: number;
}

/**
 * An unflagged related sensor's `values` (one per reading of the flagged sensor's history `h`)
 * as chart points on the same times, thinned as `chartSeries` thins a history: each bucket's
 * lowest and highest known reading, the first, the onset and the latest reading.
 */
function relatedSeries(h: History, values: (number | null)[], maxPoints: number): RelatedSeries {
  const n = values.length;
  const keep: number[] = [];
  if (n <= maxPoints) {
    for (let i = 0; i < n; i++) keep.push(i);
  } else {
    const buckets = Math.max(1, Math.floor((maxPoints - 2) / 2));
    const size = n / buckets;
    for (let b = 0; b < buckets; b++) {
      const from = Math.floor(b * size);
      const to = Math.min(n, Math.floor((b + 1) * size));
      let lo = -1;
      let hi = -1;
      for (let i = from; i < to; i++) {
        const x = values[i];
        if (x == null) continue;
        if (lo < 0 || x < values[lo]!) lo = i;
        if (hi < 0 || x > values[hi]!) hi = i;
      }
      // A bucket with no reading keeps one point: the gap shows.
      if (lo < 0) keep.push(from);
      else keep.push(Math.min(lo, hi), Math.max(lo, hi));
    }
    // The first and latest readings too: the chart spans the history's whole time.
    keep.push(0, h.onset, n - 1);
    keep.sort((a, b) => a - b);
  }
  const unique = keep.filter((i, k) => k === 0 || keep[k - 1] !== i);
  const seconds = (i: number) => Math.round(readingMs(h, i)) / 1000;
  return {
    t: unique.map(seconds),
    values: unique.map((i) => {
      const x = values[i];
      return x == null ? null : Number(x.toPrecision(6));
    }),
    onset: readingMs(h, h.onset) / 1000,
    readings: n,
  };
}

/** The lowest and highest known reading of `values[from, to)`, or null when there is none. */
function knownRange(values: (number | null)[], from: number, to: number) {
  const known = values.slice(from, to).filter((x): x is number => x != null);
  return rangeOf(known, 0, known.length);
}

/** What an unflagged related sensor's readings say in words, around its flagged sensor's onset. */
function relatedSummary(values: (number | null)[], onset: number): string {
  const before = knownRange(values, 0, onset);
  const after = knownRange(values, onset, values.length);
  const parts = [];
  if (before) parts.push(`before the onset ${num(before[0])} to ${num(before[1])}`);
  if (after) parts.push(`from it ${num(after[0])} to ${num(after[1])}`);
  const missing = values.length - values.filter((x) => x != null).length;
  if (missing > 0) parts.push(`${missing} not kept`);
  return parts.join("; ");
}

/** How far an unflagged related sensor moved, as a bar on a ±σ scale (for an alert that sent no readings for it). */
function MovedGauge(props: { moved: number; label: string }) {
  const span = Math.max(4, Math.ceil(Math.abs(props.moved)));
  const x = (sd: number) => 100 + (sd / span) * 96;
  const end = x(Math.max(-span, Math.min(span, props.moved)));
  const far = Math.abs(props.moved) >= MOVED_SD;
  return (
    <svg
      class="gauge"
      viewBox="0 0 200 28"
      width="200"
      height="28"
      role="img"
      aria-label={props.label}
    >
      <rect x={x(-MOVED_SD)} y="4" width={x(MOVED_SD) - x(-MOVED_SD)} height="16" class="usual" />
      <line x1="100" y1="2" x2="100" y2="22" class="zero" />
      <rect
        x={Math.min(100, end)}
        y="8"
        width={Math.max(1, Math.abs(end - 100))}
        height="8"
        class={far ? "moved far" : "moved"}
      />
      <text x="2" y="27" class="tick">
        −{span}σ
      </text>
      <text x="198" y="27" class="tick" text-anchor="end">
        +{span}σ
      </text>
    </svg>
  );
}

function RelatedItem(props: {
  related: RelatedSensor;
  flagged?: IncidentSensor;
  /** The history of the flagged sensor that lists it: the times its `values` were read at. */
  history?: History;
}) {
  const r = props.related;
  const name = sensorName(r);
  const moved = `moved ${signed(r.moved)} σ`;
  const f = props.flagged;
  const h = props.history;
  const own = !f?.history && h && r.values?.length === h.values.length ? r.values : undefined;
  return (
    <li data-feature-idx={r.feature_idx} data-flagged={f ? "true" : "false"}>
      <bdi class="related-name">{name}</bdi>{" "}
      <span class="related-facts">
        weight {num(r.weight, 2)} · {moved}
        {f ? ` · flagged too (severity ${num(f.severity ?? null)})` : ""}
        {!f && Math.abs(r.moved) < MOVED_SD ? " · stayed near its usual level" : ""}
      </span>
      {f?.history ? (
        <div
          class="chart small"
          role="img"
          aria-label={`${name}: ${f.history.values.length} readings, ${historySummary(f)}`}
          data-name={name}
          data-series={JSON.stringify(chartSeries(f.history, SMALL_CHART_POINTS))}
          data-low={f.typical ? String(f.typical.low) : undefined}
          data-high={f.typical ? String(f.typical.high) : undefined}
        />
      ) : own && h ? (
        <div
          class="chart small related-readings"
          role="img"
          aria-label={`${name}: ${own.length} readings over the same time, ${moved}; ${relatedSummary(own, h.onset)}`}
          data-name={name}
          data-series={JSON.stringify(relatedSeries(h, own, SMALL_CHART_POINTS))}
        />
      ) : (
        <MovedGauge moved={r.moved} label={`${name} ${moved}; not flagged, so no readings`} />
      )}
    </li>
  );
}

/**
 * A flagged sensor's figure. With a history: the readings over it, the onset marked, the typical
 * range shaded and the running level dashed; without one (older engines): the window the model
 * saw. `flagged` finds a related sensor's own evidence when it is flagged in the same incident.
 */
export function SensorEvidence(props: {
  sensor: IncidentSensor;
  index: number;
  flagged: Map<number, IncidentSensor>;
}) {
  const s = props.sensor;
  const name = sensorName(s);
  const typical = s.typical ? `${num(s.typical.low)} to ${num(s.typical.high)}` : "not reported";
  const headingId = `sensor-${props.index}`;
  const h = s.history;
  return (
    <figure class="sensor" aria-labelledby={headingId} data-feature-idx={s.feature_idx}>
      <figcaption>
        <h3 id={headingId}>{name}</h3>
        <p>
          severity <strong>{num(s.severity ?? null)}</strong> · score {num(s.score)}
          {s.statistic ? ` · statistic ${s.statistic}` : ""} · latest {num(s.value ?? null)} ·
          typical {typical}
        </p>
        {h ? <p class="onset">{historySummary(s)}</p> : null}
      </figcaption>
      {s.window || h ? (
        <>
          <div
            class="chart"
            role="img"
            aria-label={
              h
                ? `${name}: ${h.values.length} readings, ${historySummary(s)}; typical range ${typical}${h.level ? "; running level dashed" : ""}`
                : `${name}: the ${s.window!.length} readings the model saw, against the typical range ${typical}`
            }
            data-name={name}
            data-values={s.window ? JSON.stringify(s.window) : undefined}
            data-series={h ? JSON.stringify(chartSeries(h, CHART_POINTS)) : undefined}
            data-low={s.typical ? String(s.typical.low) : undefined}
            data-high={s.typical ? String(s.typical.high) : undefined}
          />
          {s.window ? (
            <table class="readings">
              <caption>
                Readings of <bdi>{name}</bdi> the model saw, oldest first
              </caption>
              <tbody>
                <tr>
                  <th scope="row">value</th>
                  {s.window.map((x) => (
                    <td>{num(x, 6)}</td>
                  ))}
                </tr>
              </tbody>
            </table>
          ) : null}
        </>
      ) : (
        <p>This alert carried no readings.</p>
      )}
      {s.related && s.related.length > 0 ? (
        <div class="related">
          <h4>Related sensors</h4>
          <ul>
            {s.related.map((r) => (
              <RelatedItem related={r} flagged={props.flagged.get(r.feature_idx)} history={h} />
            ))}
          </ul>
        </div>
      ) : null}
    </figure>
  );
}
