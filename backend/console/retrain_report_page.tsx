// The retraining report page: both models side by side, the data the retraining used and what it left out, the decision and why.
import type { RetrainMetrics, RetrainReport } from "../../contracts/models_api.ts";
import { num, utc } from "./format.ts";
import { Layout } from "./layout.tsx";

/** Sensors listed by name at most; a cut can touch hundreds. */
const SENSORS_SHOWN = 50;

/** A time as the console writes it, the text as given when it is no time, "–" when absent. */
function When(props: { at: string | null | undefined }) {
  const { at } = props;
  if (!at) return <>–</>;
  return (
    <time datetime={at}>{Number.isNaN(Date.parse(at)) ? at : utc(new Date(at).toISOString())}</time>
  );
}

function Span(props: { from: string | null | undefined; to: string | null | undefined }) {
  return (
    <>
      <When at={props.from} /> – <When at={props.to} />
    </>
  );
}

/** "0.925 (37 of 40)": a recall with what it counts; "–" when there was nothing to measure. */
function recall(x: {
  recall: number | null;
  detected: number;
  events?: number;
  incidents?: number;
}) {
  const of = x.events ?? x.incidents ?? 0;
  return x.recall === null
    ? `– (${x.detected} of ${of})`
    : `${num(x.recall)} (${x.detected} of ${of})`;
}

/** Counts by reason as a list; "none" when nothing was left out. */
function ByReason(props: { counts: Record<string, number>; id: string }) {
  const entries = Object.entries(props.counts);
  if (entries.length === 0) return <>none</>;
  return (
    <ul id={props.id}>
      {entries.map(([reason, frames]) => (
        <li>
          <code>{reason}</code>: {frames} frames
        </li>
      ))}
    </ul>
  );
}

function Names(props: { names: string[] }) {
  const shown = props.names.slice(0, SENSORS_SHOWN);
  const more = props.names.length - shown.length;
  return (
    <>
      {shown.map((name, i) => (
        <>
          {i > 0 ? ", " : ""}
          <code>{name}</code>
        </>
      ))}
      {more > 0 ? ` and ${more} more` : ""}
    </>
  );
}

function Criteria(props: { report: RetrainReport }) {
  const { criteria } = props.report;
  return (
    <section aria-labelledby="criteria-heading">
      <h2 id="criteria-heading">Criteria</h2>
      {criteria.length === 0 ? (
        <p>The gate measured nothing (see the reasons).</p>
      ) : (
        <table id="retrain-criteria">
          <caption>
            Each criterion of the promotion gate: both models' values and the worst the candidate
            may have
          </caption>
          <thead>
            <tr>
              <th scope="col">Criterion</th>
              <th scope="col">Active</th>
              <th scope="col">Candidate</th>
              <th scope="col">Limit</th>
              <th scope="col">Result</th>
              <th scope="col">Note</th>
            </tr>
          </thead>
          <tbody>
            {criteria.map((c) => (
              <tr data-criterion={c.name} data-pass={String(c.pass)}>
                <th scope="row">
                  <code>{c.name}</code>
                </th>
                <td class="num">{num(c.active)}</td>
                <td class="num">{num(c.candidate)}</td>
                <td class="num">{num(c.limit)}</td>
                <td>{c.pass ? "pass" : "worse"}</td>
                <td>{c.note ?? "–"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function Models(props: { report: RetrainReport }) {
  const { active, candidate } = props.report.models;
  const kinds = [
    ...new Set([...Object.keys(active.injected), ...Object.keys(candidate?.injected ?? {})]),
  ];
  const row = (label: string, value: (m: RetrainMetrics) => string, key: string) => (
    <tr data-metric={key}>
      <th scope="row">{label}</th>
      <td class="num">{value(active)}</td>
      <td class="num">{candidate ? value(candidate) : "–"}</td>
    </tr>
  );
  return (
    <section aria-labelledby="models-heading">
      <h2 id="models-heading">The two models side by side</h2>
      {candidate ? null : <p>The candidate could not be loaded: it has no results.</p>}
      <table id="retrain-models">
        <caption>Both models' results on the same recent stretch and injected events</caption>
        <thead>
          <tr>
            <th scope="col">Measure</th>
            <th scope="col">
              Active <code class="model">{active.version}</code>
            </th>
            <th scope="col">
              Candidate{" "}
              <code class="model">{candidate?.version ?? props.report.candidate_version}</code>
            </th>
          </tr>
        </thead>
        <tbody>
          {row(
            "False-alarm windows per 10k",
            (m) => num(m.recent.falseAlarmFramesPer10k),
            "false-alarms",
          )}
          {row(
            "False incidents per 10k",
            (m) => num(m.recent.falseIncidentsPer10k),
            "false-incidents",
          )}
          {row("Windows judged", (m) => String(m.recent.windows), "windows")}
          {row("Confirmed-incident recall", (m) => recall(m.confirmed), "confirmed-recall")}
          {kinds.map((kind) =>
            row(
              `Injected recall: ${kind}`,
              (m) => {
                const k = m.injected[kind];
                return k ? recall(k) : "–";
              },
              `injected-${kind}`,
            ),
          )}
        </tbody>
      </table>
    </section>
  );
}

function DataUsed(props: { report: RetrainReport }) {
  const d = props.report.data;
  const stuck = d.stuck_left_out;
  const leftOut = d.injected.left_out;
  return (
    <section aria-labelledby="data-heading">
      <h2 id="data-heading">Data used</h2>
      <dl class="facts" id="retrain-data">
        <dt>History time range</dt>
        <dd>
          <Span from={d.time_range.from} to={d.time_range.to} />
        </dd>
        <dt>Frames read / usable</dt>
        <dd>
          {d.frames_read} / {d.usable_frames}
        </dd>
        <dt>Training stretch</dt>
        <dd>
          {d.training.frames} frames in {d.training.runs} runs,{" "}
          <Span from={d.training.from} to={d.training.to} />
        </dd>
        <dt>Judged stretch (recent, both models scored)</dt>
        <dd>
          {d.recent.frames} frames, <Span from={d.recent.from} to={d.recent.to} />
        </dd>
        <dt>Frames read but excluded, by why</dt>
        <dd>
          <ByReason counts={d.excluded_read} id="excluded-read" />
        </dd>
        <dt>Frames never recorded, by why</dt>
        <dd>
          <ByReason counts={d.excluded_before_recording} id="excluded-before-recording" />
        </dd>
        <dt>False-positive frames used (judged normal by operators)</dt>
        <dd>{d.false_positive_frames_used}</dd>
        <dt>Stuck frames cut from training</dt>
        <dd id="stuck-left-out">
          {stuck ? (
            <>
              {stuck.frames} frames
              {stuck.sensors.length ? (
                <>
                  ; sensors held a reading:{" "}
                  <Names
                    names={stuck.sensors.map(
                      (s) => `${s.name} (${s.frames} frames${s.action === "kept" ? ", kept" : ""})`,
                    )}
                  />
                </>
              ) : null}
            </>
          ) : (
            "–"
          )}
        </dd>
        <dt>Injected events</dt>
        <dd id="injected">
          {d.injected.events} events ({d.injected.per_kind} per kind, seed {d.injected.seed})
          {leftOut ? (
            <>
              ; {leftOut.events} left out as within what operators judged normal
              {leftOut.events > 0 ? (
                <>
                  {" "}
                  on{" "}
                  <Names
                    names={leftOut.sensors
                      .filter((s) => s.events > 0)
                      .map((s) => `${s.feature} (up to ${num(s.judged_normal_std)} std)`)}
                  />
                </>
              ) : null}
            </>
          ) : (
            "; left out: –"
          )}
        </dd>
        <dt>Confirmed incidents</dt>
        <dd id="confirmed-incidents">
          {d.confirmed_incidents.length ? <Names names={d.confirmed_incidents} /> : "none"}
        </dd>
      </dl>
    </section>
  );
}

/**
 * The report of one retraining, from the engine's `GET /models/{name}/retrains/{version}`.
 * `active`: the version the engine serves now, when it could be asked; a promoted candidate the
 * report says was not activated (manual promotion) but that is active now was activated after the
 * run, and the page says so instead of "ready for activation".
 */
export function RetrainReportPage(props: { report: RetrainReport; active?: string }) {
  const r = props.report;
  const label = `${r.model}@${r.candidate_version}`;
  const a = r.activated;
  return (
    <Layout title={`Retraining ${label}`} section="health">
      <h1>
        Retraining <code class="model">{label}</code>: <span id="decision">{r.decision}</span>
      </h1>
      <p>
        <a href="/status">Back to Health</a>
      </p>
      <section aria-labelledby="decision-heading">
        <h2 id="decision-heading">Decision</h2>
        <dl class="facts" id="retrain-decision">
          <dt>Decided</dt>
          <dd>
            <strong>{r.decision}</strong> at <When at={r.decided_at} />, against the active{" "}
            <code class="model">{r.active_version}</code>
          </dd>
          <dt>Promotion</dt>
          <dd>{r.promote ?? "–"}</dd>
          <dt>Activated</dt>
          <dd id="activated">
            {a ? (
              <>
                yes: <code>{a.from ?? "none"}</code> → <code>{a.version}</code> by{" "}
                <strong>
                  <bdi>{a.by}</bdi>
                </strong>{" "}
                at <When at={a.at} />
              </>
            ) : r.decision === "promoted" && props.active === r.candidate_version ? (
              "activated after the run (active now); the audit trail says by whom"
            ) : r.decision === "promoted" ? (
              "no: ready for activation by a person"
            ) : (
              "no"
            )}
          </dd>
        </dl>
        <h3 id="reasons-heading">Reasons</h3>
        {r.reasons.length ? (
          <ul id="reasons" aria-labelledby="reasons-heading">
            {r.reasons.map((reason) => (
              <li>{reason}</li>
            ))}
          </ul>
        ) : (
          <p>–</p>
        )}
      </section>
      <Criteria report={r} />
      <Models report={r} />
      <DataUsed report={r} />
    </Layout>
  );
}
