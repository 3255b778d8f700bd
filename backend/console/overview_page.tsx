// The Overview page: a severity heatmap of time × the most severe flagged sensors over a chosen period.
import type { Heatmap } from "../incidents/incident_types.ts";
import { num, severityStep, utc } from "./format.ts";
import { Layout } from "./layout.tsx";

/** The periods a person can choose, in milliseconds. */
export const PERIODS: Record<string, { ms: number; label: string }> = {
  "1h": { ms: 3_600_000, label: "last hour" },
  "6h": { ms: 6 * 3_600_000, label: "last 6 hours" },
  "24h": { ms: 24 * 3_600_000, label: "last 24 hours" },
  "7d": { ms: 7 * 24 * 3_600_000, label: "last 7 days" },
};

function bucketLabel(map: Heatmap, bucket: number): string {
  const at = new Date(Date.parse(map.from) + bucket * map.bucket_ms).toISOString();
  return map.bucket_ms >= 86_400_000
    ? at.slice(5, 10)
    : utc(at).slice(map.bucket_ms >= 3_600_000 ? 5 : 11, 16);
}

/** "05:17Z", or "05:17:30Z" when the slot does not start on a whole minute. */
function clock(iso: string): string {
  return `${iso.slice(11, iso.slice(17, 19) === "00" ? 16 : 19)}Z`;
}

/**
 * A slot as a cell's name says it, with its zone and where it ends (so its length):
 * "2026-12-06 05:17Z to 06:17Z", the end's date too when it is another day.
 */
export function slotLabel(map: Heatmap, bucket: number): string {
  const start = Date.parse(map.from) + bucket * map.bucket_ms;
  const [from, to] = [start, start + map.bucket_ms].map((t) => new Date(t).toISOString());
  const sameDay = from.slice(0, 10) === to.slice(0, 10);
  return `${from.slice(0, 10)} ${clock(from)} to ${sameDay ? "" : `${to.slice(0, 10)} `}${clock(to)}`;
}

export function OverviewPage(props: { map: Heatmap; period: string }) {
  const { map } = props;
  const cells = new Map(map.cells.map((c) => [`${c.feature_idx}:${c.bucket}`, c]));
  const buckets = Array.from({ length: map.buckets }, (_, b) => b);
  return (
    <Layout title="Overview" section="overview">
      <h1>Overview</h1>
      <form method="get" action="/overview" class="period">
        <label for="period">Period</label>
        <select id="period" name="period">
          {Object.entries(PERIODS).map(([key, p]) => (
            <option value={key} selected={key === props.period}>
              {p.label}
            </option>
          ))}
        </select>
        <button type="submit">Show</button>
      </form>
      <p id="overview-legend">
        Each cell is the highest severity a sensor reached in a time slot (
        {Number((map.bucket_ms / 60_000).toFixed(1))} min), in the slot of that peak, from{" "}
        {utc(map.from)} to {utc(map.to)}; the {map.sensors.length} most severe sensors. An incident
        still open from before the period shows the earlier peaks of its sensors in the first slot.
        Each cell opens the incident of its peak.
      </p>
      {map.sensors.length === 0 ? (
        <p class="empty">No incidents in this period.</p>
      ) : (
        <div class="heatmap-wrap">
          <table class="heatmap">
            <caption>Severity by sensor and time (UTC)</caption>
            <thead>
              <tr>
                <th scope="col">Sensor</th>
                {buckets.map((b) => (
                  <th scope="col" class="slot">
                    {b % Math.max(1, Math.round(map.buckets / 8)) === 0 ? bucketLabel(map, b) : ""}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {map.sensors.map((s) => {
                const name = s.feature ?? `#${s.feature_idx}`;
                return (
                  <tr>
                    <th scope="row">{name}</th>
                    {buckets.map((b) => {
                      const cell = cells.get(`${s.feature_idx}:${b}`);
                      if (!cell) return <td class="sev-0" />;
                      return (
                        <td class={`sev-${severityStep(cell.severity)}`}>
                          <a
                            href={`/incidents/${cell.incident_id}`}
                            aria-label={`${name}, ${slotLabel(map, b)}: severity ${num(cell.severity)}`}
                            // U+2068/U+2069 isolate the name in the tooltip, as <bdi> does.
                            title={`\u2068${name}\u2069, severity ${num(cell.severity)}`}
                          >
                            {num(cell.severity, 2)}
                          </a>
                        </td>
                      );
                    })}
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </Layout>
  );
}
