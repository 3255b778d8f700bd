// The Incident page: summary, timeline, acknowledgement, verdict, each flagged sensor's evidence in context, similar past incidents.

import type { Silence } from "../../contracts/silence.ts";
import type {
  Acknowledgement,
  IncidentDetail,
  IncidentSensor,
} from "../incidents/incident_types.ts";
import type { SimilarIncidents } from "../incidents/similar_incidents.ts";
import type { IncidentNotified } from "../notify/outbox_repository.ts";
import { ConsoleTokenForm, type KeepTyped, useKeptText } from "./console_token_form.tsx";
import { FormError, invalidIf } from "./form_error.tsx";
import { age, modelLabel, num, utc } from "./format.ts";
import { Layout } from "./layout.tsx";
import { NameField } from "./name_field.tsx";
import { SensorEvidence, sensorName } from "./sensor_evidence.tsx";
import { SimilarSection } from "./similar_section.tsx";
import { VerdictSection } from "./verdict_form.tsx";
import { NotAllowed, useViewer } from "./viewer.tsx";

/** Sensors drawn as charts; the rest are listed in a table (an incident may flag thousands). */
export const CHARTED_SENSORS = 12;

function Timeline(props: { incident: IncidentDetail }) {
  return (
    <ol class="timeline">
      {props.incident.timeline.map((e) => (
        <li data-event={e.event}>
          <time datetime={e.at}>{utc(e.at)}</time> <strong>{e.event}</strong>
          {e.event === "acknowledged" ? (
            <>
              {" by "}
              <bdi>{e.by}</bdi>
              {e.note ? (
                <>
                  : <bdi>{e.note}</bdi>
                </>
              ) : null}
            </>
          ) : (
            ` · ${e.num_sensors} sensor${e.num_sensors === 1 ? "" : "s"}, max severity ${num(e.max_severity)}`
          )}
          {e.event === "acknowledged" ? null : e.event === "resolved" &&
            props.incident.superseded_by &&
            e.model_name === null ? (
            " · closed by the backend (superseded)"
          ) : (
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

function AckSection(props: {
  incident: IncidentDetail;
  tokenRequired: boolean;
  error?: string;
  /** The API's key of the field `error` is about (`by`), marked invalid. */
  errorField?: string;
  /** What was typed into the refused form, shown again. */
  values?: Record<string, string>;
  /** The page follows this form's recorded acknowledgement: said, and focused by the script. */
  done?: boolean;
  /** The form's acknowledgement was not recorded: this one came first (`values` what was typed). */
  taken?: Acknowledgement;
  /** A refused form of the page (this one or the verdict's), carried through the token form. */
  keep?: KeepTyped;
}) {
  const { incident, taken } = props;
  // Carried back through the token form: the form filled in as it was typed when refused.
  const kept = useKeptText("ack");
  const values = props.values ?? kept;
  const keptNote = taken ? (props.values?.note ?? "").trim() : "";
  const invalid = (key: string) =>
    invalidIf(props.error !== undefined && props.errorField === key, "ack-error");
  const id = incident.incident_id;
  const viewer = useViewer();
  return (
    <section aria-labelledby="ack-heading">
      <h2 id="ack-heading">Acknowledgement</h2>
      {props.error ? (
        <FormError id="ack-error" prefix="Not acknowledged: " message={props.error} />
      ) : taken ? (
        // As a refusal is: announced, and focused by the script (form_error.tsx's FormError).
        <p class="error" role="alert" id="ack-error" tabindex={-1}>
          Already acknowledged by <bdi>{taken.by}</bdi> at{" "}
          <time datetime={taken.at}>{utc(taken.at)}</time>:{" "}
          {keptNote ? "your note was not recorded; it is kept below." : "yours was not recorded."}
        </p>
      ) : props.done ? (
        <p id="ack-done" role="status" class="done" tabindex={-1}>
          Acknowledgement recorded.
        </p>
      ) : null}
      {incident.acknowledged ? (
        <p id="ack-state" data-acknowledged="true">
          {/* Isolated: a right-to-left override in the name or note cannot reorder the time. */}
          Acknowledged by{" "}
          <strong>
            <bdi>{incident.acknowledged.by}</bdi>
          </strong>{" "}
          at <time datetime={incident.acknowledged.at}>{utc(incident.acknowledged.at)}</time>
          {incident.acknowledged.note ? (
            <>
              : <bdi class="note">{incident.acknowledged.note}</bdi>
            </>
          ) : (
            ""
          )}
        </p>
      ) : null}
      {incident.acknowledged && keptNote ? (
        // Not sent anywhere (the acknowledgement is taken): there to copy, into the verdict's note.
        <p class="ack-kept">
          <label for="ack-note">Your note (not recorded)</label>
          <br />
          <textarea id="ack-note" rows={3} readonly aria-describedby="ack-error">
            {keptNote}
          </textarea>
        </p>
      ) : null}
      {incident.acknowledged ? null : (
        <>
          <p id="ack-state" data-acknowledged="false">
            Not acknowledged yet.
          </p>
          {viewer.canAct ? (
            <form method="post" action={`/incidents/${id}/ack`} class="ack">
              <NameField id="ack-by" value={values?.by} invalid={invalid("by")} />
              <label for="ack-note">Note (optional)</label>
              <textarea id="ack-note" name="note" maxlength={2000} rows={2} {...invalid("note")}>
                {values?.note ?? ""}
              </textarea>
              <button type="submit">Acknowledge</button>
            </form>
          ) : (
            <NotAllowed what="Acknowledging" />
          )}
        </>
      )}
      {props.tokenRequired ? (
        <ConsoleTokenForm returnTo={`/incidents/${id}`} keep={props.keep} />
      ) : null}
    </section>
  );
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/**
 * Whether anyone was told of the incident, from what its outbox messages became (the notifier's
 * record, notify/README.md), not from the silences: delivered or tried, all silenced, stale,
 * waiting, or none written at all.
 */
function Notified(props: {
  incident: IncidentDetail;
  notified: IncidentNotified | null;
  configured: boolean;
}) {
  const n = props.notified;
  const silenceLink = props.incident.silence_id ? (
    <a href={`/silences#silence-${props.incident.silence_id}`}>a maintenance silence</a>
  ) : (
    "a maintenance silence"
  );
  if (n && n.reached > 0) {
    const routes = n.routes.join(", ");
    const unconfirmed = n.reached - n.delivered;
    return (
      <dd id="incident-notified" data-notified="yes">
        {n.delivered > 0 ? "yes: " : "tried, none confirmed delivered: "}
        {plural(n.routes.length, "route")} (<bdi>{routes}</bdi>), {plural(n.delivered, "message")}{" "}
        delivered
        {n.delivered > 0 && unconfirmed > 0 ? `, ${unconfirmed} tried` : ""}
        {n.first_at ? (
          <>
            , first at <time datetime={n.first_at}>{utc(n.first_at)}</time>
          </>
        ) : null}
      </dd>
    );
  }
  if (n && n.silenced > 0) {
    return (
      <dd id="incident-notified" data-notified="silenced">
        never notified: silenced by {silenceLink} ({plural(n.silenced, "message")} stored, not sent
        {n.stale > 0 ? `; ${n.stale} too old for their route` : ""})
      </dd>
    );
  }
  if (n && n.waiting > 0) {
    return (
      <dd id="incident-notified" data-notified="waiting">
        not yet: {plural(n.waiting, "message")} waiting to be sent
      </dd>
    );
  }
  if (n && n.stale > 0) {
    return (
      <dd id="incident-notified" data-notified="stale">
        never notified: older than its routes' <code>max_age</code> when planned (
        {plural(n.stale, "message")} stored, not sent)
      </dd>
    );
  }
  if (n) {
    return (
      <dd id="incident-notified" data-notified="failed">
        never notified: {plural(n.messages, "message")} not delivered (dead letters or superseded,
        see <a href="/health">Health</a>)
      </dd>
    );
  }
  return (
    <dd id="incident-notified" data-notified="none">
      {props.configured
        ? "nothing sent: no notification route matched it"
        : "nothing sent: notifications are not configured"}
    </dd>
  );
}

/** The silence the incident's latest alert fell under: which, by whom, until when, whether it holds. */
function SilenceFacts(props: { incident: IncidentDetail; silence?: Silence }) {
  const i = props.incident;
  const s = props.silence;
  return (
    <dd id={i.silenced ? "incident-silenced" : "incident-silence-ended"}>
      its latest alert fell under{" "}
      <a href={`/silences#silence-${i.silence_id}`}>a maintenance silence</a>
      {s ? (
        <>
          {" "}
          by <bdi>{s.created_by}</bdi> (<bdi>{s.reason}</bdi>), until{" "}
          <time datetime={s.ends_at}>{utc(s.ends_at)}</time>
          {s.expired_at ? (
            <>
              , expired by <bdi>{s.expired_by ?? ""}</bdi> at{" "}
              <time datetime={s.expired_at}>{utc(s.expired_at)}</time>
            </>
          ) : null}
        </>
      ) : null}
      {i.silenced ? ", which holds now" : ", which no longer holds"}
    </dd>
  );
}

export function IncidentPage(props: {
  incident: IncidentDetail;
  now: number;
  tokenRequired: boolean;
  error?: string;
  /** Earlier incidents like this one; the section is left out when absent. */
  similar?: SimilarIncidents;
  /** The acknowledgement form's was not recorded: this one came first. */
  ackTaken?: Acknowledgement;
  /** The verdict form's last problem (the acknowledgement's is `error`). */
  verdictError?: string;
  /** The API's key of the field the last problem is about, marked invalid in its form. */
  errorField?: string;
  /** What was typed into the refused form (`error`'s or `verdictError`'s), shown again. */
  values?: Record<string, string>;
  /** Which form's action the page follows (the redirect after it says `?done=`), if any. */
  done?: "ack" | "verdict";
  /** Its outbox messages (notify/outbox_repository.ts); null: none; absent: the line is left out. */
  notified?: IncidentNotified | null;
  /** Whether notification routes are configured (false: `NOTIFY_CONFIG` unset); default true. */
  notifyConfigured?: boolean;
  /** The silence its latest alert fell under (`silence_id`), when still stored. */
  silence?: Silence;
}) {
  const i = props.incident;
  const charted = i.sensors.slice(0, CHARTED_SENSORS);
  const listed = i.sensors.slice(CHARTED_SENSORS);
  // A related sensor flagged in this incident is charted from its own history.
  const flagged = new Map<number, IncidentSensor>(i.sensors.map((s) => [s.feature_idx, s]));
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
          {i.superseded_by ? (
            <span id="incident-superseded">
              {" "}
              (at its last alert, by the backend: its engine never ended it and opened{" "}
              <a href={`/incidents/${i.superseded_by}`}>a later incident</a> on this stream with
              this model, so it had lost this one)
            </span>
          ) : null}
        </dd>
        <dt>Kind</dt>
        <dd id="incident-kind">
          {i.kind === "sensor"
            ? "sensor: the evidence looks like an instrument failing"
            : "process: the evidence looks like the process itself moved"}
        </dd>
        {props.notified !== undefined ? (
          <>
            <dt>Notified</dt>
            <Notified
              incident={i}
              notified={props.notified}
              configured={props.notifyConfigured ?? true}
            />
          </>
        ) : null}
        {i.silence_id ? (
          <>
            <dt>Silence</dt>
            <SilenceFacts incident={i} silence={props.silence} />
          </>
        ) : null}
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
      <AckSection
        incident={i}
        tokenRequired={props.tokenRequired}
        error={props.error}
        errorField={props.errorField}
        values={props.error || props.ackTaken ? props.values : undefined}
        done={props.done === "ack"}
        taken={props.ackTaken}
        keep={
          props.values && props.error
            ? { form: "ack", values: props.values }
            : props.values && props.verdictError
              ? { form: "verdict", values: props.values }
              : undefined
        }
      />
      <VerdictSection
        incident={i}
        error={props.verdictError}
        errorField={props.errorField}
        values={props.verdictError ? props.values : undefined}
        done={props.done === "verdict"}
      />
      <section aria-labelledby="timeline-heading">
        <h2 id="timeline-heading">Timeline</h2>
        <Timeline incident={i} />
      </section>
      <section aria-labelledby="sensors-heading">
        <h2 id="sensors-heading">Flagged sensors</h2>
        <p>
          Strongest first. Each chart shows the sensor's recent readings (oldest left) with the
          incident's onset marked, its typical range shaded and, where the model judges it against
          one, its running level dashed; alerts without a history show the readings the model saw.
          Related sensors are the ones its model ties it to (weight 1: they move as one): how far
          each moved in the alert's window, in robust standard deviations (σ) of its training
          readings, and its readings when it is flagged too.
        </p>
        <div class="sensors">
          {charted.map((sensor, index) => (
            <SensorEvidence sensor={sensor} index={index} flagged={flagged} />
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
      {props.similar ? <SimilarSection found={props.similar} /> : null}
    </Layout>
  );
}

/** A console page for a missing incident or another error a person should read. */
/**
 * A form's action the backend could not record (its database unavailable): says so, with what was
 * typed, so nothing has to be typed again once it answers.
 */
export function NotRecordedPage(props: {
  message: string;
  typed: Record<string, string | undefined>;
  back: { href: string; label: string };
}) {
  const typed = Object.entries(props.typed).filter(([, value]) => value);
  return (
    <Layout title="Not recorded" section="incident">
      <h1>Not recorded</h1>
      <p role="alert" id="not-recorded" tabindex={-1}>
        Nothing was recorded: {props.message}
      </p>
      {typed.length > 0 && (
        <>
          <h2>What you sent</h2>
          <dl>
            {typed.map(([field, value]) => (
              <>
                <dt>{field}</dt>
                <dd>
                  <pre>{value}</pre>
                </dd>
              </>
            ))}
          </dl>
        </>
      )}
      <p>
        <a href={props.back.href}>{props.back.label}</a>
      </p>
    </Layout>
  );
}

export function MessagePage(props: {
  title: string;
  message: string;
  /** The API's stable error code (`forbidden`), shown after the message: what to quote or look up. */
  code?: string;
  /** Where the way back leads (default: the open incidents). */
  back?: { href: string; label: string };
}) {
  const back = props.back ?? { href: "/", label: "Back to the open incidents" };
  return (
    <Layout title={props.title} section="incident">
      <h1>{props.title}</h1>
      <p role="alert" id="message" tabindex={-1}>
        {props.message}
        {props.code ? (
          <>
            {" "}
            <span class="error-code">
              (<code>{props.code}</code>)
            </span>
          </>
        ) : null}
      </p>
      <p>
        <a href={back.href}>{back.label}</a>
      </p>
    </Layout>
  );
}
