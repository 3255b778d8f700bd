// The Incident page: summary, timeline, acknowledgement, and per flagged sensor its window against the typical band.
import type { IncidentDetail, IncidentSensor } from "../incidents/incident_types.ts";
import { age, modelLabel, num, utc } from "./format.ts";
import { Layout } from "./layout.tsx";

/** Sensors drawn as charts; the rest are listed in a table (an incident may flag thousands). */
export const CHARTED_SENSORS = 12;

function sensorName(s: IncidentSensor): string {
  return s.feature ?? `#${s.feature_idx}`;
}

function SensorChart(props: { sensor: IncidentSensor; index: number }) {
  const s = props.sensor;
  const name = sensorName(s);
  const typical = s.typical ? `${num(s.typical.low)} to ${num(s.typical.high)}` : "not reported";
  const headingId = `sensor-${props.index}`;
  return (
    <figure class="sensor" aria-labelledby={headingId}>
      <figcaption>
        <h3 id={headingId}>{name}</h3>
        <p>
          severity <strong>{num(s.severity ?? null)}</strong> · score {num(s.score)}
          {s.statistic ? ` · statistic ${s.statistic}` : ""} · latest {num(s.value ?? null)} ·
          typical {typical}
        </p>
      </figcaption>
      {s.window ? (
        <>
          <div
            class="chart"
            role="img"
            aria-label={`${name}: the ${s.window.length} readings the model saw, against the typical range ${typical}`}
            data-name={name}
            data-values={JSON.stringify(s.window)}
            data-low={s.typical ? String(s.typical.low) : undefined}
            data-high={s.typical ? String(s.typical.high) : undefined}
          />
          <table class="readings">
            <caption>Readings of {name}, oldest first</caption>
            <tbody>
              <tr>
                <th scope="row">value</th>
                {s.window.map((x) => (
                  <td>{num(x, 6)}</td>
                ))}
              </tr>
            </tbody>
          </table>
        </>
      ) : (
        <p>This alert carried no readings.</p>
      )}
    </figure>
  );
}

function Timeline(props: { incident: IncidentDetail }) {
  return (
    <ol class="timeline">
      {props.incident.timeline.map((e) => (
        <li data-event={e.event}>
          <time datetime={e.at}>{utc(e.at)}</time> <strong>{e.event}</strong>
          {e.event === "acknowledged"
            ? ` by ${e.by}${e.note ? `: ${e.note}` : ""}`
            : ` · ${e.num_sensors} sensor${e.num_sensors === 1 ? "" : "s"}, max severity ${num(e.max_severity)}`}
          {e.event === "acknowledged" ? null : (
            <>
              {" · model "}
              <code class="model">{modelLabel(e.model_name, e.model_version)}</code>
            </>
          )}
        </li>
      ))}
    </ol>
  );
}

function AckSection(props: { incident: IncidentDetail; tokenRequired: boolean; error?: string }) {
  const { incident } = props;
  const id = incident.incident_id;
  return (
    <section aria-labelledby="ack-heading">
      <h2 id="ack-heading">Acknowledgement</h2>
      {props.error ? (
        <p class="error" role="alert">
          {props.error}
        </p>
      ) : null}
      {incident.acknowledged ? (
        <p id="ack-state" data-acknowledged="true">
          Acknowledged by <strong>{incident.acknowledged.by}</strong> at{" "}
          <time datetime={incident.acknowledged.at}>{utc(incident.acknowledged.at)}</time>
          {incident.acknowledged.note ? `: ${incident.acknowledged.note}` : ""}
        </p>
      ) : (
        <>
          <p id="ack-state" data-acknowledged="false">
            Not acknowledged yet.
          </p>
          <form method="post" action={`/incidents/${id}/ack`} class="ack">
            <label for="ack-by">Your name</label>
            <input id="ack-by" name="by" required maxlength={100} autocomplete="name" />
            <label for="ack-note">Note (optional)</label>
            <textarea id="ack-note" name="note" maxlength={2000} rows={2} />
            <button type="submit">Acknowledge</button>
          </form>
        </>
      )}
      {props.tokenRequired ? (
        <details>
          <summary>Console token</summary>
          <form method="post" action="/console-token" class="token">
            <input type="hidden" name="return" value={`/incidents/${id}`} />
            <label for="console-token">Token (kept in a cookie for this site)</label>
            <input id="console-token" name="token" type="password" required autocomplete="off" />
            <button type="submit">Use token</button>
          </form>
        </details>
      ) : null}
    </section>
  );
}

export function IncidentPage(props: {
  incident: IncidentDetail;
  now: number;
  tokenRequired: boolean;
  error?: string;
}) {
  const i = props.incident;
  const charted = i.sensors.slice(0, CHARTED_SENSORS);
  const listed = i.sensors.slice(CHARTED_SENSORS);
  const model = modelLabel(i.model_name, i.model_version);
  const openedWith = modelLabel(i.opened_model_name, i.opened_model_version);
  return (
    <Layout title={`Incident on ${i.stream_id}`} section="incident" charts>
      <h1>
        Incident on stream {i.stream_id} <span class={`state ${i.state}`}>{i.state}</span>
      </h1>
      <dl class="facts">
        <dt>Started</dt>
        <dd>
          <time datetime={i.started_at}>{utc(i.started_at)}</time> ({age(i.started_at, props.now)}{" "}
          ago)
        </dd>
        <dt>Resolved</dt>
        <dd>
          {i.resolved_at ? <time datetime={i.resolved_at}>{utc(i.resolved_at)}</time> : "not yet"}
        </dd>
        <dt>Peak severity</dt>
        <dd>{num(i.max_severity)}</dd>
        <dt>Sensors</dt>
        <dd>{i.num_sensors}</dd>
        <dt>Alerts</dt>
        <dd>{i.alerts}</dd>
        <dt>Model (latest alert)</dt>
        <dd>
          <code id="incident-model">{model}</code>
        </dd>
        {openedWith !== model ? (
          <>
            <dt>Opened by model</dt>
            <dd>
              <code id="incident-opened-model">{openedWith}</code>
            </dd>
          </>
        ) : null}
        <dt>Incident id</dt>
        <dd>
          <code>{i.incident_id}</code>
        </dd>
      </dl>
      <AckSection incident={i} tokenRequired={props.tokenRequired} error={props.error} />
      <section aria-labelledby="timeline-heading">
        <h2 id="timeline-heading">Timeline</h2>
        <Timeline incident={i} />
      </section>
      <section aria-labelledby="sensors-heading">
        <h2 id="sensors-heading">Flagged sensors</h2>
        <p>
          Strongest first. Each chart shows the readings the model saw (oldest left) against the
          sensor's typical range (shaded).
        </p>
        <div class="sensors">
          {charted.map((sensor, index) => (
            <SensorChart sensor={sensor} index={index} />
          ))}
        </div>
        {listed.length > 0 ? (
          <table class="more-sensors">
            <caption>
              {i.num_sensors - CHARTED_SENSORS} more sensor
              {i.num_sensors - CHARTED_SENSORS === 1 ? "" : "s"}
              {listed.length < i.num_sensors - CHARTED_SENSORS
                ? ` (the strongest ${listed.length} shown)`
                : ""}
            </caption>
            <thead>
              <tr>
                <th scope="col">Sensor</th>
                <th scope="col">Severity</th>
                <th scope="col">Statistic</th>
                <th scope="col">Latest</th>
                <th scope="col">Typical</th>
              </tr>
            </thead>
            <tbody>
              {listed.map((s) => (
                <tr>
                  <td>{sensorName(s)}</td>
                  <td class="num">{num(s.severity ?? null)}</td>
                  <td>{s.statistic ?? "–"}</td>
                  <td class="num">{num(s.value ?? null)}</td>
                  <td>{s.typical ? `${num(s.typical.low)} to ${num(s.typical.high)}` : "–"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : null}
      </section>
    </Layout>
  );
}

/** A console page for a missing incident or another error a person should read. */
export function MessagePage(props: { title: string; message: string }) {
  return (
    <Layout title={props.title} section="incident">
      <h1>{props.title}</h1>
      <p>{props.message}</p>
      <p>
        <a href="/">Back to the open incidents</a>
      </p>
    </Layout>
  );
}
