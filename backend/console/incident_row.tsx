// One incident as a row of the Now page's tables; also sent over the live stream, rendered here.
import type { IncidentSummary } from "../incidents/incident_types.ts";
import type { IncidentNotified } from "../notify/outbox_repository.ts";
import { age, modelLabel, num, utc } from "./format.ts";
import { verdictLabel } from "./verdict_form.tsx";

/** The first few sensor names, strongest first, and how many more there are. */
export function sensorList(incident: IncidentSummary, shown = 3): string {
  const names = incident.sensors
    .slice(0, shown)
    .map((s) => s.feature ?? `#${s.feature_idx}`)
    .join(", ");
  const more = incident.num_sensors - Math.min(shown, incident.sensors.length);
  return more > 0 ? `${names} and ${more} more` : names;
}

/**
 * Whether nobody was told of the incident because of a silence, from its outbox messages
 * (`notified`; null: it has none): none may have reached a receiver, and some were silenced, or
 * none was written while a silence holds over it now. Not read (undefined): the silence that holds
 * now stands in.
 */
export function silencedUntold(
  incident: IncidentSummary,
  notified: IncidentNotified | null | undefined,
): boolean {
  if (!notified) return incident.silenced;
  return notified.reached === 0 && (notified.silenced > 0 || incident.silenced);
}

export function IncidentRow(props: {
  incident: IncidentSummary;
  now: number;
  /** Its outbox messages (notify/outbox_repository.ts); null: none; absent: not read. */
  notified?: IncidentNotified | null;
}) {
  const i = props.incident;
  return (
    <tr data-incident={i.incident_id} data-started={i.started_at} data-state={i.state}>
      <td>
        <a href={`/incidents/${i.incident_id}`}>{utc(i.started_at)}</a>
      </td>
      <td>
        {i.stream_id}
        {i.kind === "sensor" ? <span class="tag kind-sensor"> sensor fault?</span> : null}
        {silencedUntold(i, props.notified) ? (
          <span class="tag silenced" title="never notified: silenced">
            {" "}
            silenced
          </span>
        ) : null}
      </td>
      <td class="sensors">{sensorList(i)}</td>
      <td class="num">{num(i.max_severity)}</td>
      <td>
        <code class="model">{modelLabel(i.model_name, i.model_version)}</code>
      </td>
      <td>
        <time datetime={i.started_at} data-age="">
          {age(i.started_at, props.now)}
        </time>
      </td>
      <td>
        {i.acknowledged ? (
          <>
            by <bdi>{i.acknowledged.by}</bdi>
          </>
        ) : (
          "not yet"
        )}
      </td>
      <td class="verdict" data-verdict={i.verdict?.verdict ?? "none"}>
        {verdictLabel(i.verdict)}
      </td>
    </tr>
  );
}

/** The table head shared by the open and resolved tables. */
export function IncidentTable(props: {
  id: string;
  caption: string;
  incidents: IncidentSummary[];
  now: number;
  empty: string;
  /** The incidents' outbox messages by id (one read for the table); absent: not read. */
  notified?: Map<string, IncidentNotified>;
}) {
  return (
    <>
      <table class="incidents" id={props.id}>
        <caption>{props.caption}</caption>
        <thead>
          <tr>
            <th scope="col">Started</th>
            <th scope="col">Stream</th>
            <th scope="col">Sensors</th>
            <th scope="col">Peak severity</th>
            <th scope="col">Model</th>
            <th scope="col">Age</th>
            <th scope="col">Acknowledged</th>
            <th scope="col">Verdict</th>
          </tr>
        </thead>
        <tbody>
          {props.incidents.map((incident) => (
            <IncidentRow
              incident={incident}
              now={props.now}
              notified={
                props.notified ? (props.notified.get(incident.incident_id) ?? null) : undefined
              }
            />
          ))}
        </tbody>
      </table>
      <p class="empty" id={`${props.id}-empty`} hidden={props.incidents.length > 0}>
        {props.empty}
      </p>
    </>
  );
}
