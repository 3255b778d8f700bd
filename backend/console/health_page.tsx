// The Health page: the engine's readiness, execution provider, frames/s, queue, latency and served models, the database's size and retention, read server-side.

import type {
  ActivationRecord,
  RetrainRun,
  RetrainSchedule,
  ServedModel,
} from "../../contracts/models_api.ts";
import type { Retirement } from "../streams/retirement_repository.ts";
import {
  ActivateError,
  ActivateForm,
  ActivateNotice,
  type ActivateRefusal,
  OTHER_SENSORS,
  showsActivateForm,
} from "./activate_form.tsx";
import { ConsoleTokenForm } from "./console_token_form.tsx";
import {
  type DatabaseHealthStatus,
  DatabaseSection,
  type RetentionInForce,
} from "./database_section.tsx";
import type { EngineModels } from "./engine_models.ts";
import type { EngineHealth, EngineStats } from "./engine_monitor.ts";
import { modelLabel, num, utc } from "./format.ts";
import { Layout } from "./layout.tsx";
import { MachineOffSection } from "./machine_off_section.tsx";
import { NotifyHealth, type NotifyHealthStatus } from "./notify_health.tsx";
import { RetiredStreamsSection } from "./retired_streams_section.tsx";
import { RetrainForm, RetrainNotice } from "./retrain_form.tsx";
import { useViewer } from "./viewer.tsx";

function Activation(props: { activation?: ActivationRecord }) {
  const a = props.activation;
  if (!a) return <>none recorded</>;
  return (
    <>
      <code>{a.from ?? "none"}</code> → <code>{a.version}</code> by{" "}
      <strong>
        <bdi>{a.by}</bdi>
      </strong>{" "}
      at{" "}
      <time datetime={a.at}>
        {Number.isNaN(Date.parse(a.at)) ? a.at : utc(new Date(a.at).toISOString())}
      </time>
      {a.reason ? (
        <>
          : <bdi>{a.reason}</bdi>
        </>
      ) : null}
    </>
  );
}

function When(props: { at: string }) {
  const { at } = props;
  return (
    <time datetime={at}>{Number.isNaN(Date.parse(at)) ? at : utc(new Date(at).toISOString())}</time>
  );
}

/** Who asked for a run (`POST /models/{name}/retrain`); nothing for a scheduled one. */
function AskedBy(props: { run: RetrainRun }) {
  const asked = props.run.requested;
  if (!asked) return null;
  return (
    <>
      {" "}
      (asked for by{" "}
      <strong>
        <bdi>{asked.by}</bdi>
      </strong>
      {asked.reason ? (
        <>
          : <bdi>{asked.reason}</bdi>
        </>
      ) : null}
      )
    </>
  );
}

/** A retrained candidate's version, linked to its report (both models, the data, the decision). */
function ReportLink(props: { model: string; version: string }) {
  const { model, version } = props;
  return (
    <a
      href={`/models/${encodeURIComponent(model)}/retrains/${encodeURIComponent(version)}`}
      class="retrain-report"
      aria-label={`Retraining report of ${model}@${version}`}
    >
      <code>{version}</code>
    </a>
  );
}

/**
 * A run's outcome. `active` is the version the engine serves now: a promoted candidate activated
 * after the run (by a person, under manual promotion) reads "active now", not "ready, not active",
 * though the run's record (written when it ended) still says it was not activated.
 */
function RetrainOutcome(props: { model: string; run: RetrainRun; active?: string | null }) {
  const r = props.run;
  if (r.outcome === "running") {
    return (
      <>
        <strong>running</strong> since <When at={r.started_at} />
        <AskedBy run={r} />
      </>
    );
  }
  const at = r.finished_at ?? r.started_at;
  if (r.outcome === "failed") {
    return (
      <span class="error">
        failed at <When at={at} />
        <AskedBy run={r} />: {r.error ?? "no message"}
      </span>
    );
  }
  return (
    <>
      <strong>{r.decision ?? "decided"}</strong>
      {r.candidate_version ? (
        <>
          {" "}
          <ReportLink model={props.model} version={r.candidate_version} />
        </>
      ) : null}
      {r.decision === "promoted"
        ? r.activated
          ? " (activated)"
          : r.candidate_version && r.candidate_version === props.active
            ? " (active now)"
            : " (ready, not active)"
        : ""}{" "}
      at <When at={at} />
      <AskedBy run={r} />
      {r.reasons.length ? `: ${r.reasons.join("; ")}` : ""}
    </>
  );
}

/** The model's retraining: the last run, the last promotion when older, the next round (if scheduled). */
function Retraining(props: { model: string; retrain?: RetrainSchedule; active?: string | null }) {
  const r = props.retrain;
  if (!r) return <>off</>;
  // The last promotion, when a later run (held, most often) is the last one.
  const promoted = r.last_promoted?.started_at !== r.last?.started_at ? r.last_promoted : undefined;
  return (
    <>
      {r.last ? (
        <RetrainOutcome model={props.model} run={r.last} active={props.active} />
      ) : (
        "no run yet"
      )}
      {promoted ? (
        <>
          ; last promoted{" "}
          {promoted.candidate_version ? (
            <ReportLink model={props.model} version={promoted.candidate_version} />
          ) : (
            "–"
          )}{" "}
          at <When at={promoted.finished_at ?? promoted.started_at} />
        </>
      ) : null}
      {r.every_h > 0 ? (
        <>
          ; every {num(r.every_h)} h
          {r.next_at ? (
            <>
              , next at <When at={r.next_at} />
            </>
          ) : null}
        </>
      ) : (
        "; not scheduled, runs when asked for"
      )}
    </>
  );
}

/** Why the registry's pointer names a version that is not scoring (absent when it is). */
function PointerNote(props: { model: ServedModel }) {
  const broken = props.model.registry_error;
  if (broken) {
    return (
      <p class="error" data-registry-error={broken.code}>
        The registry cannot be read ({broken.message}); the version above goes on scoring.
      </p>
    );
  }
  const p = props.model.registry_pointer;
  if (!p) return null;
  const why =
    p.following === "refused"
      ? "refused, so the version above goes on scoring until the pointer moves"
      : p.following === "retrying"
        ? `not loaded yet; trying again at ${p.next_try_at ?? "a later time"}`
        : "being loaded";
  return (
    <p class={p.following === "pending" ? "note" : "error"} data-registry-pointer={p.following}>
      The registry names <code>{p.version}</code>: {why}
      {p.error ? `: ${p.error}` : ""}.
    </p>
  );
}

function ModelRow(props: {
  model: ServedModel;
  retrainNow: boolean;
  activateRefused?: ActivateRefusal;
}) {
  const m = props.model;
  return (
    <tr data-model={m.name}>
      <th scope="row">
        <code>{m.name}</code>
      </th>
      <td>
        <code class="model" data-active-version={m.active_version}>
          {modelLabel(m.name, m.active_version)}
        </code>
        <PointerNote model={m} />
      </td>
      <td>
        {m.versions.length === 0
          ? "–"
          : m.versions.map((version, i) => (
              <>
                {i > 0 ? ", " : ""}
                {version === m.active_version ? (
                  <strong>
                    <code>{version}</code> (active)
                  </strong>
                ) : (
                  <>
                    <code>{version}</code>
                    {m.incompatible_versions?.includes(version) ? OTHER_SENSORS : ""}
                  </>
                )}
              </>
            ))}
        {m.layout === "flat" ? " (flat layout)" : ""}
      </td>
      <td>{m.routes.length ? m.routes.join(", ") : "–"}</td>
      <td class="num">{m.live_streams}</td>
      <td>
        <Activation activation={m.activation} />
      </td>
      <td data-retrain={m.retrain?.last?.outcome ?? (m.retrain ? "none" : "off")}>
        <Retraining model={m.name} retrain={m.retrain} active={m.active_version} />
        {props.retrainNow ? <RetrainForm model={m} /> : null}
      </td>
      <td>
        <ActivateForm model={m} refused={props.activateRefused} />
      </td>
    </tr>
  );
}

/** A version just activated here: which model, and whether it was active already. */
interface Activated {
  model: string;
  unchanged: boolean;
}

function ModelsSection(props: {
  models: EngineModels;
  retrainNow: boolean;
  retrained?: string;
  activated?: Activated;
  activateRefused?: ActivateRefusal;
}) {
  const { models, activateRefused } = props;
  const listed = "error" in models ? [] : models.models;
  // Only for a model the engine serves: the URL's name is anyone's text.
  const activated = listed.find((m) => m.name === props.activated?.model);
  return (
    <section aria-labelledby="models-heading">
      <h2 id="models-heading">Models</h2>
      {activated ? (
        <ActivateNotice model={activated} unchanged={props.activated?.unchanged ?? false} />
      ) : null}
      {/* Only for a model the engine serves and can retrain: the URL's name is anyone's text. */}
      {!("error" in models) &&
      models.models.some((m) => m.name === props.retrained && m.retrain && m.layout !== "flat") ? (
        <RetrainNotice model={props.retrained as string} />
      ) : null}
      {"error" in models ? (
        <p id="engine-models-error" class="error">
          The engine's models could not be read: {models.error}
        </p>
      ) : models.models.length === 0 ? (
        <p id="engine-models-error">The engine serves no model yet.</p>
      ) : (
        <table id="engine-models" class="models">
          <caption>Models the engine serves, with the version scoring now</caption>
          <thead>
            <tr>
              <th scope="col">Model</th>
              <th scope="col">Active version</th>
              <th scope="col">Versions on disk, oldest first</th>
              <th scope="col">Routes</th>
              <th scope="col">Live streams</th>
              <th scope="col">Last activation</th>
              <th scope="col">Retraining</th>
              <th scope="col">Activate a version</th>
            </tr>
          </thead>
          <tbody>
            {models.models.map((model) => (
              <ModelRow
                model={model}
                retrainNow={props.retrainNow}
                activateRefused={activateRefused}
              />
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

/** Each model's share of the engine's figures, when it serves more than one (one: the figures above). */
function PerModel(props: { models: EngineStats["models"] }) {
  const models = props.models ?? [];
  if (models.length < 2) return null;
  return (
    <table id="engine-per-model">
      <caption>The same figures for each model, since the engine started or was reset</caption>
      <thead>
        <tr>
          <th scope="col">Model</th>
          <th scope="col">Frames accepted / scored</th>
          <th scope="col">Queue depth</th>
          <th scope="col">Latency, reception to scored (p50 / p99)</th>
        </tr>
      </thead>
      <tbody>
        {models.map((m) => (
          <tr data-model={m.name}>
            <th scope="row">
              <code>{m.name}</code>
            </th>
            <td class="num">
              {m.frames ? `${m.frames.accepted ?? "–"} / ${m.frames.scored}` : "–"}
            </td>
            <td class="num">{m.queue ? `${m.queue.depth} of ${m.queue.capacity}` : "–"}</td>
            <td class="num">
              {m.latency_ms
                ? `${num(m.latency_ms.p50, 3)} ms / ${num(m.latency_ms.p99, 3)} ms`
                : "–"}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/**
 * Partitions of the frame bus no live worker owns (`/stats` `bus`, an ingest replica): their
 * frames are accepted and kept but nobody scores them, while every other figure can look normal
 * (readiness stays ready, latency is the last scored frame's).
 */
function UnownedPartitions(props: { bus: EngineStats["bus"] }) {
  const partitions = props.bus?.unowned_partitions ?? [];
  if (partitions.length === 0) return null;
  const n = partitions.length;
  const frames = props.bus?.unscored_unowned ?? 0;
  return (
    <p id="engine-unowned" class="error" role="status">
      <strong>
        No live worker scores {n} {n === 1 ? "partition" : "partitions"}: {frames}{" "}
        {frames === 1 ? "frame waits" : "frames wait"} unscored
      </strong>{" "}
      (partitions {partitions.join(", ")}). Start an inference worker; until one takes them the
      engine answers <code>429</code> once a partition holds more than <code>NATS_MAX_LAG</code>.
    </p>
  );
}

export function HealthPage(props: {
  health: EngineHealth | null;
  database: { kind: string; reachable: boolean };
  /** Size, oldest rows kept and the last prune; absent: the section is left out. */
  databaseHealth?: DatabaseHealthStatus;
  notifications?: NotifyHealthStatus;
  /** A dead letter just sent again from this page (the notice above the dead letters). */
  resent?: string;
  /** Whether this backend forwards "Retrain now" to the engine (the form is shown to admins). */
  retrainNow?: boolean;
  /** A model whose retraining was just started here (the notice above the models). */
  retrained?: string;
  /** A version just activated here (the notice above the models). */
  activated?: Activated;
  /** A refused activation: said beside that model's form, else at the top of the page. */
  activateRefused?: ActivateRefusal;
  /** `CONSOLE_TOKEN` is set without sign-in: the page offers the token form. */
  tokenRequired?: boolean;
  /** The retention settings in force in this backend, for the Database section. */
  retention?: RetentionInForce;
  /** Milliseconds since the epoch (a last prune is judged overdue against it). */
  now?: number;
  /** Retirements in force: their streams are shown under "Retired streams", not as silent. */
  retired?: Retirement[];
}) {
  const h = props.health;
  const stats = h?.stats ?? null;
  const viewer = useViewer();
  const refused = props.activateRefused;
  const refusedForm =
    refused && h && !("error" in h.models)
      ? h.models.models.find((m) => m.name === refused.model && showsActivateForm(m, viewer.role))
      : undefined;
  return (
    <Layout title="Health" section="health">
      <h1>Health</h1>
      {/* A model whose form the page does not show (no longer served, the engine unreachable). */}
      {refused && !refusedForm ? <ActivateError message={refused.message} /> : null}
      <section aria-labelledby="engine-heading">
        <h2 id="engine-heading">Engine</h2>
        <UnownedPartitions bus={stats?.bus} />
        {h === null ? (
          <p>No engine URL is configured for this backend.</p>
        ) : (
          <dl class="facts" id="engine-health">
            <dt>Address</dt>
            <dd>
              <code>{h.engine_url}</code>
            </dd>
            <dt>Readiness</dt>
            <dd data-ready={h.ready?.status ?? "unreachable"}>
              {h.reachable ? (h.ready?.status ?? "unknown answer") : "unreachable"}
              {/* The engine's own reason (a model that failed to load, say). */}
              {h.ready?.error ? `: ${h.ready.error}` : ""}
              {h.error ? ` (${h.error})` : ""}
            </dd>
            <dt>Model</dt>
            <dd>
              {h.ready?.model
                ? `${h.ready.model.name} ${h.ready.model.version}, ${h.ready.model.n_features} sensors, window ${h.ready.model.window_size}`
                : "–"}
            </dd>
            <dt>Execution provider</dt>
            <dd>
              {h.ready?.execution_provider ?? "–"}
              {h.ready?.gpu.name ? ` (${h.ready.gpu.name})` : ""}
            </dd>
            <dt>Frames scored per second</dt>
            <dd>{h.frames_per_s === null ? "–" : num(h.frames_per_s, 3)}</dd>
            <dt>Frames accepted / rejected / scored</dt>
            <dd>
              {stats
                ? `${stats.frames.accepted} / ${stats.frames.rejected} / ${stats.frames.scored}`
                : "–"}
            </dd>
            <dt>Queue depth</dt>
            <dd>{stats ? `${stats.queue.depth} of ${stats.queue.capacity}` : "–"}</dd>
            <dt>Latency, reception to scored (p50 / p99)</dt>
            <dd>
              {stats
                ? `${num(stats.latency_ms.p50, 3)} ms / ${num(stats.latency_ms.p99, 3)} ms`
                : "–"}
            </dd>
            <dt>Inference (p50 / p99)</dt>
            <dd>
              {stats?.inference_ms
                ? `${num(stats.inference_ms.p50, 3)} ms / ${num(stats.inference_ms.p99, 3)} ms`
                : "–"}
            </dd>
            <dt>Alerts generated / delivered / waiting in the outbox</dt>
            <dd>
              {stats?.alerts
                ? `${stats.alerts.generated} / ${stats.alerts.delivered} / ${stats.alerts.outbox}`
                : "–"}
            </dd>
            <dt>Resident memory</dt>
            <dd>{stats?.rss_bytes ? `${Math.round(stats.rss_bytes / 1048576)} MB` : "–"}</dd>
          </dl>
        )}
        <PerModel models={stats?.models} />
      </section>
      <MachineOffSection
        stopped={h?.stats?.machine_off}
        silent={h?.stats?.silent}
        retired={props.retired}
      />
      {/* From the database: shown, and can be watched again, whatever the engine answers. */}
      <RetiredStreamsSection retired={props.retired} />
      {h === null ? null : (
        <ModelsSection
          models={h.models}
          retrainNow={props.retrainNow ?? false}
          retrained={props.retrained}
          activated={props.activated}
          activateRefused={refusedForm ? refused : undefined}
        />
      )}
      {props.tokenRequired ? (
        <ConsoleTokenForm
          returnTo="/status"
          summary="Console token (activating, retraining and re-sending notifications need it)"
        />
      ) : null}
      <section aria-labelledby="backend-heading">
        <h2 id="backend-heading">Backend</h2>
        <dl class="facts">
          <dt>Database</dt>
          <dd>
            {props.database.kind}, {props.database.reachable ? "reachable" : "unreachable"}
          </dd>
        </dl>
      </section>
      <DatabaseSection
        health={props.databaseHealth ?? null}
        retention={props.retention}
        now={props.now ?? Date.now()}
      />
      <NotifyHealth status={props.notifications ?? null} resent={props.resent} />
    </Layout>
  );
}
