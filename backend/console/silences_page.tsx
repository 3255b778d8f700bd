// The Silences page: silences holding, pending and over, reminders of those ending soon, and the forms to create and expire one.
import { SILENCE_DAYS, type Silence } from "../../contracts/silence.ts";
import { compileSilence, silenceHolds } from "../../contracts/silence_match.ts";
import { ConsoleTokenForm, useKept, useKeptText } from "./console_token_form.tsx";
import { type FieldLabels, FormError, invalidIf, type Refusal } from "./form_error.tsx";
import { age, utc } from "./format.ts";
import { Layout } from "./layout.tsx";
import { NameField } from "./name_field.tsx";
import { ENDING_SOON_MS, SilenceScope, silenceEnd } from "./silence_banner.tsx";
import { NotAllowed, useViewer } from "./viewer.tsx";

/** What the create form sends back on a refusal, so nothing typed is lost. */
export type SilenceFormValues = Partial<Record<string, string | string[]>>;

const DAY_NAMES: Record<(typeof SILENCE_DAYS)[number], string> = {
  mon: "Monday",
  tue: "Tuesday",
  wed: "Wednesday",
  thu: "Thursday",
  fri: "Friday",
  sat: "Saturday",
  sun: "Sunday",
};

function When(props: { silence: Silence }) {
  const s = props.silence;
  const r = s.recurrence;
  return (
    <>
      <time datetime={s.starts_at}>{utc(s.starts_at)}</time> to{" "}
      <time datetime={s.ends_at}>{utc(s.ends_at)}</time>
      {r ? (
        <>
          <br />
          every {r.days.map((d) => DAY_NAMES[d]).join(", ")}, {r.from} to {r.to} ({r.tz})
        </>
      ) : null}
    </>
  );
}

// Stored text is isolated (`<bdi>`) where words or times stand beside it: a right-to-left
// override in a reason or a name cannot reorder them.
function Scope(props: { silence: Silence }) {
  const m = props.silence.matchers;
  return (
    <>
      <code class="glob">
        <bdi>{m.stream}</bdi>
      </code>
      <br />
      {m.sensors.length === 0
        ? "every sensor"
        : m.sensors.map((g, i) => (
            <>
              {i > 0 ? ", " : ""}
              <code class="glob">
                <bdi>{g}</bdi>
              </code>
            </>
          ))}
    </>
  );
}

/** Sensor globs named in a control's name at most; the rest are counted. */
const SENSORS_NAMED = 3;

/** A silence's scope as plain text, for names: "line-c, sensors pump*, valve*" or "kiln-2, every sensor". */
function scopeText(s: Silence): string {
  const { stream, sensors } = s.matchers;
  if (sensors.length === 0) return `${stream}, every sensor`;
  const named = sensors.slice(0, SENSORS_NAMED).join(", ");
  const more = sensors.length - SENSORS_NAMED;
  return `${stream}, sensors ${named}${more > 0 ? ` and ${more} more` : ""}`;
}

/** A form's outcome the page confirms: the silence it created or expired. */
export interface SilenceDone {
  what: "created" | "expired";
  silence: Silence;
}

/** Says what the form just sent did; the console's script starts the focus here. */
function DoneMessage(props: { done: SilenceDone }) {
  const { what, silence: s } = props.done;
  const end = new Date(silenceEnd(s)).toISOString();
  return (
    <p id="silence-done" class="done" role="status" tabindex={-1} data-silence={s.silence_id}>
      {what === "created" ? (
        <>
          Silence created: <SilenceScope silence={s} />, from{" "}
          <time datetime={s.starts_at}>{utc(s.starts_at)}</time> to{" "}
          <time datetime={s.ends_at}>{utc(s.ends_at)}</time>.
        </>
      ) : s.expired_at ? (
        <>
          Silence expired: <SilenceScope silence={s} />, by <bdi>{s.expired_by}</bdi> at{" "}
          <time datetime={s.expired_at}>{utc(s.expired_at)}</time>.
        </>
      ) : (
        <>
          Nothing to expire: the silence of <SilenceScope silence={s} /> ended at{" "}
          <time datetime={end}>{utc(end)}</time>.
        </>
      )}
    </p>
  );
}

/** An expiry not recorded because someone expired the silence first: theirs, and what was typed. */
export interface ExpireTaken {
  silenceId: string;
  /** Who expired it first, and when. */
  by: string;
  at: string;
  values: Record<string, string>;
}

/**
 * Whose expiry stands and that the form's was not recorded, announced and focused as a refusal
 * is (form_error.tsx's FormError), with the reason typed kept to copy.
 */
function ExpireTakenMessage(props: { taken: ExpireTaken }) {
  const { silenceId, by, at, values } = props.taken;
  const reason = (values.reason ?? "").trim();
  return (
    <>
      <p class="error" role="alert" id="silence-error" tabindex={-1} data-silence={silenceId}>
        Already expired by <bdi>{by}</bdi> at <time datetime={at}>{utc(at)}</time>:{" "}
        {reason
          ? "your reason was not recorded; it is kept below."
          : "your expiry was not recorded."}
      </p>
      {reason ? (
        // Not sent anywhere (the silence is over): there to copy.
        <p class="expire-kept">
          <label for="expire-kept-reason">Your reason (not recorded)</label>
          <br />
          <textarea id="expire-kept-reason" rows={2} readonly aria-describedby="silence-error">
            {values.reason}
          </textarea>
        </p>
      ) : null}
    </>
  );
}

/** A refused expiry: the silence whose form it was, why, and what was typed. */
export interface ExpireRefusal extends Refusal {
  silenceId: string;
}

/**
 * What tells each silence of a table from the others in its controls' names: the scope and start,
 * then who set it for two of one scope and start, then its place among those still alike.
 */
function silenceNames(silences: readonly Silence[]): Map<string, string> {
  const base = (s: Silence) => `the silence of ${scopeText(s)}, from ${utc(s.starts_at)}`;
  const count = (key: (s: Silence) => string) => {
    const n = new Map<string, number>();
    for (const s of silences) n.set(key(s), (n.get(key(s)) ?? 0) + 1);
    return n;
  };
  const bases = count(base);
  const withAuthor = (s: Silence) =>
    (bases.get(base(s)) ?? 0) > 1 ? `${base(s)}, set by ${s.created_by}` : base(s);
  const authored = count(withAuthor);
  const seen = new Map<string, number>();
  const names = new Map<string, string>();
  for (const s of silences) {
    const name = withAuthor(s);
    const of = authored.get(name) ?? 0;
    if (of > 1) {
      const n = (seen.get(name) ?? 0) + 1;
      seen.set(name, n);
      names.set(s.silence_id, `${name} (${n} of ${of})`);
    } else names.set(s.silence_id, name);
  }
  return names;
}

function ExpireForm(props: { silence: Silence; refused?: Refusal; which: string }) {
  const id = props.silence.silence_id;
  const viewer = useViewer();
  if (!viewer.canAct) return <NotAllowed what="Expiring a silence" />;
  const refused = props.refused;
  // Carried back through the token form: the form filled in as it was typed when refused.
  const kept = useKeptText(`expire-${id}`);
  const typed = refused?.values ?? kept ?? {};
  const invalid = (key: string) => invalidIf(refused?.field === key, "expire-error");
  // Every row has these controls: each name says whose they are (silenceNames: the scope and
  // start, then who set it; not the reason, which may run to 500 characters), after the words on
  // screen. In brackets: the hidden text is a box of its own, which screen readers set apart with
  // a space.
  const which = props.which;
  return (
    <form method="post" action={`/silences/${id}/expire`} class="expire">
      {refused ? (
        <FormError id="expire-error" prefix="Not expired: " message={refused.message} />
      ) : null}
      <NameField
        id={`expire-by-${id}`}
        which={<span class="vh"> (expire {which})</span>}
        value={typed.by}
        invalid={invalid("by")}
      />
      <label for={`expire-reason-${id}`}>
        Why (optional)<span class="vh"> (expire {which})</span>
      </label>
      <input
        id={`expire-reason-${id}`}
        name="reason"
        maxlength={500}
        value={typed.reason}
        {...invalid("reason")}
      />
      <button type="submit" aria-label={`Expire now: ${which}`}>
        Expire now
      </button>
    </form>
  );
}

function SilenceTable(props: {
  id: string;
  caption: string;
  silences: Silence[];
  now: number;
  actions: boolean;
  empty: string;
  /** A refused expiry, shown in its silence's row. */
  refused?: ExpireRefusal;
}) {
  const names = silenceNames(props.silences);
  if (props.silences.length === 0) {
    return (
      <p id={`${props.id}-empty`} class="empty">
        {props.empty}
      </p>
    );
  }
  return (
    <table id={props.id} class="silences">
      <caption>{props.caption}</caption>
      <thead>
        <tr>
          <th scope="col">Streams and sensors</th>
          <th scope="col">When</th>
          <th scope="col">Reason</th>
          <th scope="col">By</th>
          <th scope="col">{props.actions ? "Expire" : "Ended"}</th>
        </tr>
      </thead>
      <tbody>
        {props.silences.map((s) => {
          const holding = s.state === "active" && silenceHolds(compileSilence(s), props.now);
          const ending = s.state !== "expired" && silenceEnd(s) - props.now <= ENDING_SOON_MS;
          return (
            <tr id={`silence-${s.silence_id}`} data-silence={s.silence_id} data-state={s.state}>
              <td>
                <Scope silence={s} />
              </td>
              <td>
                <When silence={s} />
                {s.state === "active" ? (
                  <>
                    <br />
                    {holding ? "holding now" : "between its windows now"}
                  </>
                ) : null}
                {ending ? (
                  <strong class="ending-soon">
                    {" "}
                    · ends in {age(new Date(props.now).toISOString(), silenceEnd(s))}
                  </strong>
                ) : null}
              </td>
              <td class="reason">{s.reason}</td>
              <td class="author">{s.created_by}</td>
              <td>
                {props.actions ? (
                  <ExpireForm
                    silence={s}
                    which={names.get(s.silence_id) as string}
                    refused={props.refused?.silenceId === s.silence_id ? props.refused : undefined}
                  />
                ) : s.expired_at ? (
                  <>
                    expired by <bdi class="author">{s.expired_by}</bdi> at{" "}
                    <time datetime={s.expired_at}>{utc(s.expired_at)}</time>
                    {s.expired_reason ? (
                      <>
                        : <bdi>{s.expired_reason}</bdi>
                      </>
                    ) : (
                      ""
                    )}
                  </>
                ) : (
                  "at its end"
                )}
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

const value = (v: SilenceFormValues, key: string) => {
  const x = v[key];
  return typeof x === "string" ? x : undefined;
};

/** The create form's labels by the API's keys (and the form's own `tz`), for its refusals. */
export const CREATE_LABELS: FieldLabels = {
  "matchers.stream": "Streams",
  "matchers.sensors": "Sensors",
  tz: "Time zone of the times below",
  starts_at: "Starts",
  ends_at: "Ends",
  recurrence: "Weekly recurrence",
  "recurrence.days": "Weekly recurrence",
  "recurrence.from": "From",
  "recurrence.to": "To",
  "recurrence.tz": "Time zone of the times below",
  // The recurrence's own checks name its fields without the prefix ("after 'from'").
  from: "From",
  reason: "Reason",
  created_by: "Your name",
  confirm_all: "I mean to silence every sensor of every stream",
};

/** An expiry form's labels, for its refusals. */
export const EXPIRE_LABELS: FieldLabels = { by: "Your name", reason: "Why" };

/** The create form's controls (their `name`) by the key a refusal names, as in CREATE_LABELS. */
const CREATE_CONTROLS: Record<string, string> = {
  "matchers.stream": "stream",
  "matchers.sensors": "sensors",
  tz: "tz",
  "recurrence.tz": "tz",
  starts_at: "starts",
  ends_at: "ends",
  recurrence: "days",
  "recurrence.days": "days",
  "recurrence.from": "from",
  "recurrence.to": "to",
  reason: "reason",
  created_by: "created_by",
  confirm_all: "confirm_all",
};

function CreateForm(props: { values?: SilenceFormValues; error?: string; errorField?: string }) {
  // Carried back through the token form: the form filled in as it was typed when refused (the
  // days, checkboxes, with every value).
  const kept = useKept("silence");
  const v: SilenceFormValues =
    props.values ??
    Object.fromEntries(
      Object.entries(kept ?? {}).map(([k, all]) => [k, k === "days" ? all : all[0]]),
    );
  const days = new Set([v.days ?? []].flat());
  const viewer = useViewer();
  if (!viewer.canAct) return <NotAllowed what="Creating a silence" />;
  const refusedControl =
    props.error !== undefined && props.errorField !== undefined
      ? CREATE_CONTROLS[props.errorField]
      : undefined;
  const invalid = (name: string, hint?: string) =>
    invalidIf(refusedControl === name, "silence-error", hint);
  return (
    <form method="post" action="/silences" class="silence-new">
      <label for="silence-stream">Streams (glob: * any characters, ? one)</label>
      <input
        id="silence-stream"
        name="stream"
        required
        maxlength={128}
        value={value(v, "stream")}
        {...invalid("stream", "silence-stream-hint")}
      />
      <p id="silence-stream-hint" class="hint">
        For example <code>line-1*</code>; <code>*</code> with no sensors silences everything and
        needs the confirmation below.
      </p>
      <label for="silence-sensors">Sensors (globs, one per line; empty: every sensor)</label>
      <textarea
        id="silence-sensors"
        name="sensors"
        rows={3}
        {...invalid("sensors", "silence-sensors-hint")}
      >
        {value(v, "sensors") ?? ""}
      </textarea>
      <p id="silence-sensors-hint" class="hint">
        While it holds, the streams' frames are also left out of the training history, whole even
        when only some sensors are silenced (a retrained model learns nothing from them).
      </p>
      <label for="silence-tz">Time zone of the times below (IANA name)</label>
      <input
        id="silence-tz"
        name="tz"
        required
        value={value(v, "tz") ?? "UTC"}
        maxlength={64}
        {...invalid("tz")}
      />
      {/* Text, not datetime-local: the same YYYY-MM-DD HH:MM whatever the browser's locale. */}
      <label for="silence-starts">Starts, YYYY-MM-DD HH:MM (empty: now)</label>
      <input
        id="silence-starts"
        name="starts"
        placeholder="2026-11-24 09:00"
        maxlength={19}
        value={value(v, "starts")}
        {...invalid("starts")}
      />
      <label for="silence-ends">Ends, YYYY-MM-DD HH:MM (at most 90 days ahead)</label>
      <input
        id="silence-ends"
        name="ends"
        required
        placeholder="2026-11-24 17:00"
        maxlength={19}
        value={value(v, "ends")}
        {...invalid("ends")}
      />
      {/* Each day's checkbox and name wrap as one; each time's label stands above its field. */}
      <fieldset class="recurrence">
        <legend>Weekly recurrence (optional: only on these days, between these times)</legend>
        <div class="days">
          {SILENCE_DAYS.map((d) => (
            <span class="day">
              <input
                id={`silence-day-${d}`}
                type="checkbox"
                name="days"
                value={d}
                checked={days.has(d)}
                {...invalid("days")}
              />
              <label for={`silence-day-${d}`}>{DAY_NAMES[d]}</label>
            </span>
          ))}
        </div>
        <div class="times">
          <span class="time">
            <label for="silence-from">From, HH:MM</label>
            <input
              id="silence-from"
              name="from"
              placeholder="01:00"
              maxlength={5}
              value={value(v, "from")}
              {...invalid("from")}
            />
          </span>
          <span class="time">
            <label for="silence-to">To, HH:MM, the same day (24:00: midnight)</label>
            <input
              id="silence-to"
              name="to"
              placeholder="04:00"
              maxlength={5}
              value={value(v, "to")}
              {...invalid("to")}
            />
          </span>
        </div>
      </fieldset>
      <label for="silence-reason">Reason</label>
      <textarea
        id="silence-reason"
        name="reason"
        required
        maxlength={500}
        rows={2}
        {...invalid("reason")}
      >
        {value(v, "reason") ?? ""}
      </textarea>
      <NameField
        id="silence-by"
        name="created_by"
        value={value(v, "created_by")}
        invalid={invalid("created_by")}
      />
      <span class="confirm">
        <input
          id="silence-confirm-all"
          type="checkbox"
          name="confirm_all"
          value="true"
          checked={value(v, "confirm_all") === "true"}
          {...invalid("confirm_all")}
        />
        <label for="silence-confirm-all">I mean to silence every sensor of every stream</label>
      </span>
      <button type="submit">Create silence</button>
    </form>
  );
}

/** The whole page. */
export function SilencesPage(props: {
  active: Silence[];
  pending: Silence[];
  expired: Silence[];
  now: number;
  tokenRequired: boolean;
  /** The create form's problem. */
  error?: string;
  /** The API's key of the field `error` is about, marked invalid in the create form. */
  errorField?: string;
  values?: SilenceFormValues;
  /** A refused expiry: shown in its silence's row when the page lists it. */
  expireRefused?: ExpireRefusal;
  /** What the form just sent did (the redirect after it names the silence), if any. */
  done?: SilenceDone;
  /** An expiry not recorded: someone expired the silence first. */
  expireTaken?: ExpireTaken;
}) {
  const endingSoon = props.active.filter((s) => silenceEnd(s) - props.now <= ENDING_SOON_MS);
  const expiring = props.expireRefused;
  const listed = [...props.active, ...props.pending].some(
    (s) => s.silence_id === expiring?.silenceId,
  );
  // An expiry whose silence is no longer listed has no row to be said in: it goes at the top.
  const unlistedExpiry = expiring && !listed ? expiring.message : undefined;
  return (
    <Layout title="Silences" section="silences">
      <h1>Silences</h1>
      <p>
        Incidents in a silence's scope are stored and shown, marked silenced, but not notified, and
        the engine keeps the silenced time out of its training history. Nothing here is ever erased:
        expiring a silence ends it now and keeps it below.
      </p>
      {props.done ? <DoneMessage done={props.done} /> : null}
      {props.expireTaken ? <ExpireTakenMessage taken={props.expireTaken} /> : null}
      {unlistedExpiry ? (
        <FormError id="silence-error" prefix="Not expired: " message={unlistedExpiry} />
      ) : null}
      {endingSoon.length > 0 ? (
        <section aria-labelledby="soon-heading">
          <h2 id="soon-heading">Ending soon</h2>
          <ul id="ending-soon">
            {endingSoon.map((s) => (
              <li data-silence={s.silence_id}>
                <code class="glob">
                  <bdi>{s.matchers.stream}</bdi>
                </code>{" "}
                ends in {age(new Date(props.now).toISOString(), silenceEnd(s))} (
                <bdi>{s.reason}</bdi>): create a new silence below to extend it.
              </li>
            ))}
          </ul>
        </section>
      ) : null}
      <section aria-labelledby="active-heading">
        <h2 id="active-heading">Active</h2>
        <SilenceTable
          id="active-silences"
          caption="Active silences, newest first"
          silences={props.active}
          now={props.now}
          actions
          refused={listed ? expiring : undefined}
          empty="No active silences."
        />
      </section>
      <section aria-labelledby="pending-heading">
        <h2 id="pending-heading">Pending</h2>
        <SilenceTable
          id="pending-silences"
          caption="Silences that have not started, newest first"
          silences={props.pending}
          now={props.now}
          actions
          refused={listed ? expiring : undefined}
          empty="None pending."
        />
      </section>
      <section aria-labelledby="new-heading">
        <h2 id="new-heading">New silence</h2>
        {/* Just above the form it refused, where the fields to correct are. */}
        {props.error ? (
          <FormError id="silence-error" prefix="Not created: " message={props.error} />
        ) : null}
        <CreateForm values={props.values} error={props.error} errorField={props.errorField} />
        {props.tokenRequired ? (
          <ConsoleTokenForm
            returnTo="/silences"
            keep={
              props.error && props.values
                ? { form: "silence", values: props.values }
                : expiring
                  ? { form: `expire-${expiring.silenceId}`, values: expiring.values }
                  : undefined
            }
          />
        ) : null}
      </section>
      <section aria-labelledby="expired-heading">
        <h2 id="expired-heading">Expired</h2>
        <SilenceTable
          id="expired-silences"
          caption="Silences that ended, newest first (the latest 50)"
          silences={props.expired}
          now={props.now}
          actions={false}
          empty="None yet."
        />
      </section>
    </Layout>
  );
}
