// The Quality page: incidents per week, stream and sensor by verdict, the false-positive share, and muting the noisiest sensors.
import type { Silence } from "../../contracts/silence.ts";
import { compileGlob } from "../../contracts/silence_match.ts";
import type {
  FalsePositiveSensor,
  QualityReport,
  VerdictCounts,
} from "../incidents/quality_repository.ts";
import { QUALITY_SENSORS } from "../incidents/quality_routes.ts";
import { ConsoleTokenForm } from "./console_token_form.tsx";
import { FormError, invalidIf, type Refusal } from "./form_error.tsx";
import { utc } from "./format.ts";
import { Layout } from "./layout.tsx";
import { NameField } from "./name_field.tsx";
import { NotAllowed, useViewer } from "./viewer.tsx";

/** The ranges a person can pick, in weeks. */
export const QUALITY_WEEKS = [4, 12, 26, 52];

/** How long "mute this sensor" silences it: the choices the form offers, in milliseconds. */
export const MUTE_DURATIONS: Record<string, { ms: number; label: string }> = {
  "8h": { ms: 8 * 3_600_000, label: "8 hours" },
  "24h": { ms: 24 * 3_600_000, label: "24 hours" },
  "7d": { ms: 7 * 86_400_000, label: "7 days" },
};

/**
 * How many names one mute covers at most (a sensor renamed within the range has several): more
 * would make a form too large to send, so such a row points to the Silences page.
 */
export const MUTE_MAX_NAMES = 100;

/** A sensor name as a glob that matches only that name: `*`, `?` and `\` made literal. */
export function literalGlob(name: string): string {
  return name.replace(/[\\*?]/g, "\\$&");
}

/** The longest sensor glob a silence holds, in characters (code points). */
const SILENCE_GLOB_MAX = 500;

/**
 * Why a silence cannot hold `name` as a sensor glob, or undefined when it can. Alerts may name a
 * sensor with an empty text, control characters (a tab) or up to 256 characters, which escaped
 * can pass the 500 a glob holds; a silence takes 1..500 printable characters only.
 */
export function unsilenceable(name: string): string | undefined {
  if (name === "") return "an empty name";
  if (/\p{Cc}/u.test(name)) return "control characters";
  if (Array.from(literalGlob(name)).length > SILENCE_GLOB_MAX) {
    return `longer than the ${SILENCE_GLOB_MAX} characters a silence holds once \`*\`, \`?\` and \`\\\` are escaped`;
  }
  return undefined;
}

/** A name as the page shows it: quoted and escaped (`"TI\t104"`, `""`) when empty or with control characters. */
export function nameShown(name: string): string {
  return name === "" || /\p{Cc}/u.test(name) ? JSON.stringify(name) : name;
}

/** The names of a row that a mute covers, and those a silence cannot hold, with why. */
export function muteNames(s: Pick<FalsePositiveSensor, "names">): {
  covered: string[];
  leftOut: { name: string; why: string }[];
} {
  const covered: string[] = [];
  const leftOut: { name: string; why: string }[] = [];
  for (const name of s.names) {
    const why = unsilenceable(name);
    if (why === undefined) covered.push(name);
    else leftOut.push({ name, why });
  }
  return { covered, leftOut };
}

/**
 * The names an active silence must cover for a row to count as muted: those a mute from the page
 * covers; when there are none, every name (only a silence of a glob such as `*` matches them).
 */
function mutedNames(s: FalsePositiveSensor): string[] {
  const { covered } = muteNames(s);
  return covered.length > 0 ? covered : s.names;
}

/** "Not covered: "" (an empty name), "TI\t104" (control characters)": names a mute leaves out. */
function LeftOut(props: { leftOut: { name: string; why: string }[]; lead: string }) {
  if (props.leftOut.length === 0) return null;
  return (
    <small class="left-out">
      {props.lead}{" "}
      {props.leftOut.map((l, i) => (
        <>
          {i > 0 ? ", " : ""}
          <code>
            <bdi>{nameShown(l.name)}</bdi>
          </code>{" "}
          ({l.why})
        </>
      ))}
    </small>
  );
}

/** What the page says after a silence was created from it. */
export interface MuteConfirmation {
  silenceId: string;
  stream: string;
  sensors: string[];
  endsAt: string;
  reason: string;
  by: string;
}

const COLUMNS: { key: keyof VerdictCounts; label: string }[] = [
  { key: "true_positive", label: "True positive" },
  { key: "false_positive", label: "False positive" },
  { key: "maintenance", label: "Maintenance" },
  { key: "sensor_fault", label: "Sensor fault" },
  { key: "none", label: "No verdict" },
  { key: "incidents", label: "Total" },
];

/** "60%", "66.7%"; "–" when nothing was judged. */
export function percent(share: number | null): string {
  return share === null ? "–" : `${Number((share * 100).toFixed(1))}%`;
}

function CountCells(props: { counts: VerdictCounts }) {
  return (
    <>
      {COLUMNS.map((c) => (
        <td class="num" data-count={c.key}>
          {props.counts[c.key]}
        </td>
      ))}
    </>
  );
}

function CountHead(props: { first: string; share?: boolean }) {
  return (
    <thead>
      <tr>
        <th scope="col">{props.first}</th>
        {COLUMNS.map((c) => (
          <th scope="col">{c.label}</th>
        ))}
        {props.share ? <th scope="col">False-positive share</th> : null}
      </tr>
    </thead>
  );
}

/** A table length other than the default (`?sensors=`, typed into the address), kept by a form. */
function SensorsKept(props: { sensors: number }) {
  return props.sensors === QUALITY_SENSORS ? null : (
    <input type="hidden" name="sensors" value={String(props.sensors)} />
  );
}

/** A refused mute: the row it came from (stream and sensor names), why, and what was typed. */
export interface MuteRefusal extends Refusal {
  stream: string;
  sensors: string[];
}

/** Whether a refused mute came from the row of `s`: its stream, and the names its form sends. */
function refusedFrom(s: FalsePositiveSensor, refused: MuteRefusal): boolean {
  const posted = new Set(refused.sensors);
  const { covered } = muteNames(s);
  return (
    s.stream_id === refused.stream &&
    posted.size === covered.length &&
    covered.every((n) => posted.has(n))
  );
}

const DEFAULT_DURATION = "24h";

/** A silence holding now that already mutes a row's sensor: said in its place, with the way to it. */
function MutedAlready(props: { silence: Silence }) {
  const m = props.silence;
  return (
    <p class="muted-already" data-silence={m.silence_id}>
      Muted until <time datetime={m.ends_at}>{utc(m.ends_at)}</time> by <bdi>{m.created_by}</bdi> (
      <a href={`/silences#silence-${m.silence_id}`}>see Silences</a>)
    </p>
  );
}

/**
 * The names other than the one shown that a row's sensor had in the range (an older name, or
 * `feature_<idx>` for alerts that gave none): its mute covers them too, so they are said.
 */
function OtherNames(props: { sensor: FalsePositiveSensor }) {
  const others = props.sensor.names.filter((n) => n !== props.sensor.feature);
  if (others.length === 0) return null;
  return (
    <small class="other-names">
      {" "}
      (also{" "}
      {others.map((n, i) => (
        <>
          {i > 0 ? ", " : ""}
          <bdi>{nameShown(n)}</bdi>
        </>
      ))}
      )
    </small>
  );
}

function MuteForm(props: {
  sensor: FalsePositiveSensor;
  index: number;
  weeks: number;
  /** The page's stream filter, kept for the way back. */
  filterStream?: string;
  /** The page's table length, kept for the way back. */
  sensors: number;
  /** This row's mute was refused: the message beside it, what was typed kept. */
  refused?: Refusal;
  /** An active silence covering this stream and sensor: shown instead of the form. */
  mutedBy?: Silence;
}) {
  const s = props.sensor;
  const id = `mute-${props.index}`;
  const viewer = useViewer();
  const { covered, leftOut } = muteNames(s);
  if (props.mutedBy && !props.refused) {
    // A name the silence does not match still notifies: said beside it.
    const globs = props.mutedBy.matchers.sensors.map(compileGlob);
    const open = leftOut.filter((l) => globs.length > 0 && !globs.some((g) => g.test(l.name)));
    return (
      <>
        <MutedAlready silence={props.mutedBy} />
        <LeftOut leftOut={open} lead="Not covered (a silence cannot hold them):" />
      </>
    );
  }
  if (covered.length === 0) {
    return (
      <p class="not-mutable">
        <LeftOut
          leftOut={leftOut}
          lead="Cannot be muted: a silence holds none of this sensor's names:"
        />
      </p>
    );
  }
  if (!viewer.canAct) return <NotAllowed what="Muting a sensor" />;
  if (covered.length > MUTE_MAX_NAMES) {
    return (
      <span>
        {covered.length} names in this range, more than a mute takes: create the silence on{" "}
        <a href="/silences">Silences</a>
      </span>
    );
  }
  const shown = nameShown(s.feature ?? `#${s.feature_idx}`);
  const typed = props.refused?.values ?? {};
  const invalid = (key: string) => invalidIf(props.refused?.field === key, "mute-error");
  // Every row has these controls: each name says whose they are, after the words on screen. In
  // brackets: the hidden text is a box of its own, which screen readers set apart with a space.
  const which = <span class="vh"> (mute {`${shown} on ${s.stream_id}`})</span>;
  const duration = Object.hasOwn(MUTE_DURATIONS, typed.duration ?? "")
    ? typed.duration
    : DEFAULT_DURATION;
  return (
    <form method="post" action="/quality/mute" class="mute">
      {props.refused ? (
        <FormError id="mute-error" prefix="Nothing was muted: " message={props.refused.message} />
      ) : null}
      <input type="hidden" name="stream" value={s.stream_id} />
      {/* Every name the sensor had in the range that a silence can hold: it covers each. */}
      {covered.map((name) => (
        <input type="hidden" name="sensor" value={name} />
      ))}
      <input type="hidden" name="weeks" value={String(props.weeks)} />
      {props.filterStream ? (
        <input type="hidden" name="stream_id" value={props.filterStream} />
      ) : null}
      <SensorsKept sensors={props.sensors} />
      <label for={`${id}-for`}>For{which}</label>
      <select id={`${id}-for`} name="duration" {...invalid("duration")}>
        {Object.entries(MUTE_DURATIONS).map(([key, d]) => (
          <option value={key} selected={key === duration}>
            {d.label}
          </option>
        ))}
      </select>
      <label for={`${id}-reason`}>Reason{which}</label>
      <input
        id={`${id}-reason`}
        name="reason"
        required
        maxlength={500}
        {...invalid("reason")}
        value={
          typed.reason ??
          `${s.false_positives} false positive${s.false_positives === 1 ? "" : "s"} in ${props.weeks} weeks`
        }
      />
      <NameField id={`${id}-by`} which={which} value={typed.by} invalid={invalid("by")} />
      {/* Described by what a mute does, said above the table (training included). */}
      <button
        type="submit"
        aria-label={`Mute this sensor: ${shown} on ${s.stream_id}`}
        aria-describedby="mute-effect"
      >
        Mute this sensor
      </button>
      <LeftOut leftOut={leftOut} lead="Leaves out (a silence cannot hold them):" />
    </form>
  );
}

export function QualityPage(props: {
  report: QualityReport;
  /** The last mute's problem; nothing was stored. Shown in its row, else at the top. */
  refused?: MuteRefusal;
  muted?: MuteConfirmation;
  tokenRequired: boolean;
  /** How many sensors each sensor table holds at most (`?sensors=`). */
  sensors: number;
  /** The active silence that already mutes a noisy row's stream and every name of its sensor. */
  mutedBy?: (stream: string, names: string[]) => Silence | undefined;
  /** A Stream filter that is not one: why, and what was typed (the report then covers every stream). */
  streamError?: { message: string; typed: string };
}) {
  const r = props.report;
  const t = r.totals;
  const refused = props.refused;
  // The names the confirmed mute left out: those of the row whose mute made its sensor globs.
  const muted = props.muted;
  const mutedRow = muted
    ? r.false_positive_sensors.find((s) => {
        const globs = muteNames(s).covered.map(literalGlob);
        return (
          s.stream_id === muted.stream &&
          globs.length === muted.sensors.length &&
          globs.every((g) => muted.sensors.includes(g))
        );
      })
    : undefined;
  // The row the refused form was in, if the table still lists it.
  const refusedRow = refused
    ? r.false_positive_sensors.findIndex((s) => refusedFrom(s, refused))
    : -1;
  return (
    <Layout title="Quality" section="quality">
      <h1>Quality</h1>
      <form method="get" action="/quality" class="period">
        <label for="quality-weeks">Weeks</label>
        <select id="quality-weeks" name="weeks">
          {[...new Set([...QUALITY_WEEKS, r.weeks])]
            .sort((a, b) => a - b)
            .map((w) => (
              <option value={String(w)} selected={w === r.weeks}>
                last {w} weeks
              </option>
            ))}
        </select>
        <label for="quality-stream">Stream</label>
        <input
          id="quality-stream"
          name="stream_id"
          value={props.streamError ? props.streamError.typed : (r.stream_id ?? "")}
          placeholder="all"
          {...invalidIf(props.streamError !== undefined, "quality-stream-error")}
        />
        {props.streamError ? (
          <FormError
            id="quality-stream-error"
            prefix="Not filtered: "
            message={`${props.streamError.message}; every stream is shown.`}
          />
        ) : null}
        <SensorsKept sensors={props.sensors} />
        <button type="submit">Show</button>
      </form>
      {refused && refusedRow < 0 ? (
        <FormError id="mute-error" prefix="Nothing was muted: " message={refused.message} />
      ) : null}
      {props.muted ? (
        <p
          class="done"
          role="status"
          id="mute-done"
          data-silence={props.muted.silenceId}
          tabindex={-1}
        >
          Muted <code>{props.muted.sensors.join(", ")}</code> on stream{" "}
          <strong>
            <bdi>{props.muted.stream}</bdi>
          </strong>{" "}
          until <time datetime={props.muted.endsAt}>{utc(props.muted.endsAt)}</time> by{" "}
          <bdi>{props.muted.by}</bdi>: <bdi>{props.muted.reason}</bdi>
          {mutedRow ? (
            <>
              {" "}
              <LeftOut
                leftOut={muteNames(mutedRow).leftOut}
                lead="Left out (a silence cannot hold them):"
              />
            </>
          ) : null}
        </p>
      ) : null}
      <p>
        Incidents that started from {utc(r.from)} to {utc(r.to)}
        {r.stream_id ? ` on stream ${r.stream_id}` : ""}, by their current verdict (a changed
        verdict counts once, as its latest).
      </p>
      <dl class="facts" id="quality-totals">
        <dt>Incidents</dt>
        <dd data-total="incidents">{t.incidents}</dd>
        <dt>With a verdict</dt>
        <dd data-total="judged">{t.judged}</dd>
        <dt>False positives</dt>
        <dd data-total="false_positive">{t.false_positive}</dd>
        <dt>False-positive share (of those with a verdict)</dt>
        <dd data-total="false_positive_share">{percent(t.false_positive_share)}</dd>
      </dl>

      <section aria-labelledby="weekly-heading">
        <h2 id="weekly-heading">Per week</h2>
        <table class="counts" id="quality-weekly">
          <caption>Incidents per week (starting Monday, UTC) by verdict, oldest first</caption>
          <CountHead first="Week of" />
          <tbody>
            {r.weekly.map((w) => (
              <tr data-week={w.week_start}>
                <th scope="row">{w.week_start.slice(0, 10)}</th>
                <CountCells counts={w} />
              </tr>
            ))}
          </tbody>
        </table>
      </section>

      <section aria-labelledby="streams-heading">
        <h2 id="streams-heading">Per stream</h2>
        {r.streams.length === 0 ? (
          <p class="empty">No incidents in this range.</p>
        ) : (
          <table class="counts" id="quality-streams">
            <caption>Incidents per stream by verdict, most first</caption>
            <CountHead first="Stream" share />
            <tbody>
              {r.streams.map((s) => (
                <tr data-stream={s.stream_id}>
                  <th scope="row">{s.stream_id}</th>
                  <CountCells counts={s} />
                  <td class="num" data-count="false_positive_share">
                    {percent(s.false_positive_share)}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>

      <section aria-labelledby="per-sensor-heading">
        <h2 id="per-sensor-heading">Per sensor</h2>
        {r.sensors.length === 0 ? (
          <p class="empty">No flagged sensors in this range.</p>
        ) : (
          <table class="counts" id="quality-sensors">
            <caption>
              The {r.sensors.length} sensors flagged in the most incidents, by the incidents'
              verdicts
            </caption>
            <CountHead first="Sensor" />
            <tbody>
              {r.sensors.map((s) => (
                <tr data-feature-idx={String(s.feature_idx)}>
                  <th scope="row">{s.feature ?? `#${s.feature_idx}`}</th>
                  <CountCells counts={s} />
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>

      <section aria-labelledby="noisy-heading">
        <h2 id="noisy-heading">Sensors with the most false positives</h2>
        {r.false_positive_sensors.length === 0 ? (
          <p class="empty">No incident in this range was judged a false positive.</p>
        ) : (
          <>
            <p id="mute-effect">
              Muting a sensor creates a silence on its stream for that sensor: an incident that
              flags no other sensor is still stored, marked silenced, and not notified until the
              silence ends. An incident that flags other sensors too is notified as before, even if
              each of them is muted on its own: one silence must cover every sensor an incident
              flags (create one naming them all on the Silences page). While it holds, the stream's
              frames are also left out of the training history, whole, not only this sensor's
              readings (a retrained model learns nothing from them).
            </p>
            {props.tokenRequired ? (
              <ConsoleTokenForm
                returnTo={`/quality?${new URLSearchParams({
                  weeks: String(r.weeks),
                  ...(r.stream_id ? { stream_id: r.stream_id } : {}),
                  ...(props.sensors === QUALITY_SENSORS ? {} : { sensors: String(props.sensors) }),
                })}`}
                summary="Console token (muting needs it)"
                id="quality-console-token"
              />
            ) : null}
            <table id="quality-noisy">
              <caption>Sensor and stream pairs by false positives, most first</caption>
              <thead>
                <tr>
                  <th scope="col">Sensor</th>
                  <th scope="col">Stream</th>
                  <th scope="col">False positives</th>
                  <th scope="col">Of incidents</th>
                  <th scope="col">Latest false positive</th>
                  <th scope="col">Mute</th>
                </tr>
              </thead>
              <tbody>
                {r.false_positive_sensors.map((s, index) => (
                  <tr data-stream={s.stream_id} data-feature-idx={String(s.feature_idx)}>
                    <th scope="row">
                      {s.feature === null ? `#${s.feature_idx}` : nameShown(s.feature)}
                      <OtherNames sensor={s} />
                    </th>
                    <td>{s.stream_id}</td>
                    <td class="num" data-count="false_positives">
                      {s.false_positives}
                    </td>
                    <td class="num" data-count="incidents">
                      {s.incidents}
                    </td>
                    <td>
                      <time datetime={s.last_false_positive_at}>
                        {utc(s.last_false_positive_at)}
                      </time>
                    </td>
                    <td>
                      <MuteForm
                        sensor={s}
                        index={index}
                        weeks={r.weeks}
                        filterStream={r.stream_id ?? undefined}
                        sensors={props.sensors}
                        refused={index === refusedRow ? refused : undefined}
                        mutedBy={props.mutedBy?.(s.stream_id, mutedNames(s))}
                      />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </>
        )}
      </section>
    </Layout>
  );
}
