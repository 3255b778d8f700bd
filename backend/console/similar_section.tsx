// The Incident page's "Similar past incidents": earlier incidents of the same model sharing its strongest sensors, linked.
import { SIMILAR_TOP_SENSORS, type SimilarIncidents } from "../incidents/similar_incidents.ts";
import { num, utc } from "./format.ts";
import { sensorName } from "./sensor_evidence.tsx";

/** "45 s", "12 min", "3 h 5 min", "2 d 4 h". */
function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

export function SimilarSection(props: { found: SimilarIncidents }) {
  const { found } = props;
  return (
    <section aria-labelledby="similar-heading" id="similar">
      <h2 id="similar-heading">Similar past incidents</h2>
      <p>
        Earlier incidents of the same model that share at least one of its {SIMILAR_TOP_SENSORS}{" "}
        strongest sensors among their own {SIMILAR_TOP_SENSORS} strongest, newest first.
      </p>
      {found.similar.length === 0 ? (
        <p id="similar-empty">
          No earlier incident of this model flagged the same strongest sensors.
        </p>
      ) : (
        <table class="similar">
          <caption>
            Earlier incidents of this model sharing its strongest sensors, newest first
          </caption>
          <thead>
            <tr>
              <th scope="col">Started</th>
              <th scope="col">Duration</th>
              <th scope="col">Kind</th>
              <th scope="col">Shared sensors</th>
              <th scope="col">Peak severity</th>
              <th scope="col">Verdict</th>
              <th scope="col">Note</th>
            </tr>
          </thead>
          <tbody>
            {found.similar.map((s) => (
              <tr data-incident={s.incident_id}>
                <td>
                  <a href={`/incidents/${s.incident_id}`}>
                    <time datetime={s.started_at}>{utc(s.started_at)}</time>
                  </a>
                  {" on "}
                  <bdi>{s.stream_id}</bdi>
                </td>
                <td>{s.duration_ms === null ? "still open" : duration(s.duration_ms)}</td>
                <td>{s.kind}</td>
                <td>{s.shared.map((r) => sensorName(r)).join(", ")}</td>
                <td class="num">{num(s.max_severity)}</td>
                <td class="verdict">
                  {s.verdict ? (
                    <>
                      {s.verdict.verdict.replace("_", " ")}
                      {s.verdict.cause ? (
                        <>
                          {" ("}
                          <bdi>{s.verdict.cause}</bdi>)
                        </>
                      ) : null}{" "}
                      by <bdi>{s.verdict.by}</bdi>
                    </>
                  ) : (
                    "none yet"
                  )}
                </td>
                <td class="note">{s.verdict?.note ?? ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
