// The operator console's routes: server-rendered pages, the live row stream, forms, static assets.
import type { Context } from "hono";
import { Hono } from "hono";
import { setCookie } from "hono/cookie";
import { html } from "hono/html";
import type { HtmlEscapedString } from "hono/utils/html";
import type { Sql } from "postgres";
import * as v from "valibot";
import { type ErrorCode, HttpError } from "../../contracts/error.ts";
import {
  activateRequestSchema,
  MODEL_NAME_PATTERN,
  retrainRequestSchema,
} from "../../contracts/models_api.ts";
import { formBody } from "../_parse_body.ts";
import type { Auth } from "../auth/auth.ts";
import { sameSecret, TOKEN_COOKIE } from "../incidents/console_auth.ts";
import type { IncidentHub } from "../incidents/incident_hub.ts";
import type { IncidentRepository } from "../incidents/incident_repository.ts";
import { streamIncidentChanges } from "../incidents/incident_stream.ts";
import type { Acknowledgement } from "../incidents/incident_types.ts";
import type { QualityRepository } from "../incidents/quality_repository.ts";
import { incidentIdParam, parseAck, parseVerdict } from "../incidents/routes.ts";
import type { ModelActivator } from "../models/model_activation.ts";
import type { RetrainReportReader } from "../models/model_report.ts";
import type { ModelRetrainer } from "../models/model_retrain.ts";
import { type DeadLetterResender, MESSAGE_ID_PATTERN } from "../notify/dead_letter_resend.ts";
import type { NotifyStatus } from "../notify/notification_dispatcher.ts";
import { incidentsNotified } from "../notify/outbox_repository.ts";
import { readDatabaseHealth } from "../retention/database_health.ts";
import type { SilenceRepository } from "../silences/silence_repository.ts";
import type { RetirementRepository } from "../streams/retirement_repository.ts";
import { type ActivateRefusal, RESET_LABEL } from "./activate_form.tsx";
import { withStoredMark, withTokenStored } from "./console_token_form.tsx";
import type { RetentionInForce } from "./database_section.tsx";
import { deadLetterFormRoutes } from "./dead_letter_form_routes.tsx";
import type { EngineMonitor } from "./engine_monitor.ts";
import {
  type FieldLabels,
  filledField,
  issueRefusal,
  refusalFor,
  refusalSentence,
} from "./form_error.tsx";
import { HealthPage } from "./health_page.tsx";
import { CHARTED_SENSORS, IncidentPage, MessagePage, NotRecordedPage } from "./incident_page.tsx";
import { IncidentRow } from "./incident_row.tsx";
import { SECURITY_HEADERS } from "./layout.tsx";
import { NowPage } from "./now_page.tsx";
import { OverviewPage, PERIODS } from "./overview_page.tsx";
import { qualityConsoleRoutes } from "./quality_routes.tsx";
import { retireFormRoutes } from "./retire_routes.tsx";
import { RetrainReportPage } from "./retrain_report_page.tsx";
import { silenceBannerLoader, withSilenceBanner } from "./silence_banner.tsx";
import { silenceConsoleRoutes } from "./silences_routes.tsx";
import { loadStaticAssets, type StaticAsset } from "./static_assets.ts";
import { verdictFromForm } from "./verdict_form.tsx";
import { viewerOf, withViewer } from "./viewer.tsx";

export interface ConsoleRoutesOptions {
  incidents: IncidentRepository;
  hub: IncidentHub;
  now: () => number;
  /** Who may act; pages hide what the signed-in role cannot do. */
  auth: Auth;
  /** `AUTH_MODE=none` only: the shared token acting needs, set through the console's token form. */
  consoleToken?: string;
  /** Reads the engine's health for the Health page; absent: the page says none is configured. */
  engine?: EngineMonitor;
  /** Its `sql` reads the Health page's Database section (size, oldest rows, last prune). */
  database: { kind: string; ping(signal?: AbortSignal): Promise<void>; readonly sql: Sql };
  quality: QualityRepository;
  /** The Quality page's "mute this sensor" creates silences with it. */
  silences: SilenceRepository;
  /** The notification outbox's state for the Health page; absent: no routes configured. */
  notifications?: { status(): Promise<NotifyStatus> };
  /** Sends dead letters again (the Health page's Re-send forms, admin); absent: 404. */
  resender?: Pick<DeadLetterResender, "resend">;
  /** Activates model versions through the engine (the Health page's form, admin). */
  activate?: ModelActivator;
  /** Asks the engine to retrain a model now (the Health page's "Retrain now", admin). */
  retrain?: ModelRetrainer;
  /** Reads a retraining's report from the engine (its page, linked from Health); absent: 404. */
  readReport?: RetrainReportReader;
  /** The retention settings in force (the Health page's Database section); absent: not known. */
  retention?: RetentionInForce;
  /** Stream retirements: "Retired streams" and the Retire / Watch again forms; absent: none. */
  retirements?: RetirementRepository;
  /** The stream's last accepted frame as the engine lists it silent now (dates a retirement). */
  lastListed?: (streamId: string) => Promise<Date | undefined>;
}

/** The report page's title when the engine refuses, by its code. */
const REPORT_REFUSAL: Partial<Record<ErrorCode, string>> = {
  report_not_found: "No retraining report",
  report_invalid: "Report unreadable",
  model_not_found: "No such model",
  version_not_found: "No such version",
  invalid_request: "Not a model name or version",
  invalid_version: "No such version",
  engine_unreachable: "Engine unreachable",
};

/**
 * Not an incident id (those are UUIDs): the live stream's first message after `ready`, the ids of
 * the incidents the Open table lists now (`{"open_now": [...]}`); the browser drops other rows there.
 */
const OPEN_NOW = "open-now";

/** Open incidents listed on the Now page at most (newest first); it says when there are more. */
export const NOW_LIMIT = 200;

/**
 * Resolved incidents of the last hour listed on the Now page at most (newest first); it says when
 * there are more and links to them. Few: every (re)connection of the live stream sends each row.
 */
export const NOW_RESOLVED_LIMIT = 20;

/** The Now page's "last hour" of resolved incidents, by start. */
const HOUR_MS = 3_600_000;

/** The acknowledgement form's labels, for its refusals (form_error.tsx). */
const ACK_LABELS: FieldLabels = { by: "Your name", note: "Note" };

/** The verdict form's labels, for its refusals. */
const VERDICT_FORM_LABELS: FieldLabels = {
  verdict: "Verdict",
  cause: "Cause",
  note: "Note",
  by: "Your name",
};

/** The Health page's model forms' labels, for their refusals. */
const MODEL_FORM_LABELS: FieldLabels = {
  version: "Version",
  reason: "Why",
  by: "Your name",
  reset_windows: RESET_LABEL,
};

/** The way back from a refused Health page form. */
const HEALTH = { href: "/status", label: "Back to Health" };

async function page(
  c: Context,
  element: HtmlEscapedString | Promise<HtmlEscapedString>,
  status = 200,
) {
  for (const [k, v] of Object.entries(SECURITY_HEADERS)) c.header(k, v);
  c.header("Cache-Control", "no-store");
  return c.html(
    html`<!doctype html>${await withViewer(c, withTokenStored(c, await withSilenceBanner(c, element)))}`,
    status as 200,
  );
}

/** A form on an incident's page the backend could not record (503), with what was typed. */
function notRecorded(
  c: Context,
  error: HttpError,
  typed: Record<string, string | undefined>,
  id: string,
) {
  return page(
    c,
    <NotRecordedPage
      message={error.message}
      typed={typed}
      back={{ href: `/incidents/${id}`, label: "Back to the incident" }}
    />,
    503,
  );
}

/** The route's incident id, or the 400 page that says why it is not one. */
function routeIncidentId(c: Context): string | Promise<Response> {
  try {
    return incidentIdParam(c.req.param("id") ?? "");
  } catch (error) {
    return page(
      c,
      <MessagePage title="Not an incident id" message={(error as Error).message} />,
      400,
    );
  }
}

/**
 * Mounted at `/`: `GET /` (Now), `GET /events` (live rows), `GET /incidents/:id`,
 * `POST /incidents/:id/ack` and `POST /incidents/:id/verdict` (forms), `POST /console-token`
 * (form), `GET /overview`, `GET /quality` and `POST /quality/mute` (quality_routes.tsx),
 * `GET /silences`, `POST /silences` and `POST /silences/:id/expire` (silences_routes.tsx),
 * `GET /status` (Health), `POST /models/:name/activate`, `POST /models/:name/retrain` and
 * `POST /notifications/:message_id/retry` (its forms), `POST /streams/:stream_id/retire` and
 * `POST /streams/:stream_id/watch` (retire_routes.tsx), `GET /models/:name/retrains/:version` (a
 * retraining's report), `GET /assets/:name`.
 */
export function consoleRoutes(options: ConsoleRoutesOptions): Hono {
  const { incidents, hub, now, auth, consoleToken, engine, database } = options;
  const app = new Hono();
  app.use(viewerOf(auth));
  // Every page's layout shows how many silences hold now, naming those ending soonest: read by
  // end time, so one ending soon is named however many newer ones are active.
  app.use(silenceBannerLoader({ activeSilences: options.silences.activeByEnd, now }));
  let assets: Promise<Map<string, StaticAsset>> | undefined;
  // The retirements in force, shown apart from the silent streams on the Now and Health pages.
  const retiredNow = () =>
    options.retirements
      ? options.retirements.list({ state: "in_force", limit: 500 })
      : Promise.resolve([]);

  // What the Now page shows: open incidents, and resolved ones that started in the last hour.
  const nowLists = (at: number, sensors: number) =>
    Promise.all([
      incidents.list({ state: "open", limit: NOW_LIMIT, sensorsPerIncident: sensors }),
      incidents.list({
        state: "resolved",
        from: new Date(at - HOUR_MS),
        limit: NOW_RESOLVED_LIMIT,
        sensorsPerIncident: sensors,
      }),
    ]);

  app.get("/", async function nowPage(c) {
    const at = now();
    const [[open, resolved], engineNow, retired] = await Promise.all([
      nowLists(at, 3),
      // A hung engine costs the page its short deadline once, then the last failure is shown.
      engine ? engine.nowState() : Promise.resolve(null),
      retiredNow(),
    ]);
    // More listed than shown: the page says how many, so none goes unnoticed. Counted only then.
    const resolvedFrom = new Date(at - HOUR_MS);
    const [openTotal, resolvedTotal, notified] = await Promise.all([
      open.next_cursor ? incidents.countOpen() : open.incidents.length,
      resolved.next_cursor ? incidents.countResolvedSince(resolvedFrom) : resolved.incidents.length,
      // Whether each listed incident was notified, in one read for the page.
      incidentsNotified(
        database.sql,
        [...open.incidents, ...resolved.incidents].map((i) => i.incident_id),
      ),
    ]);
    return page(
      c,
      <NowPage
        open={open.incidents}
        openTotal={openTotal}
        resolved={resolved.incidents}
        resolvedTotal={resolvedTotal}
        resolvedFrom={resolvedFrom.toISOString()}
        now={at}
        engine={engineNow}
        retired={retired}
        notified={notified}
      />,
    );
  });

  app.get("/events", function liveRows(c) {
    // Every (re)connection starts with the rows of the page, so a browser that lost the stream
    // for a while catches up without a reload; first of all with the ids open now, since a row of
    // one that resolved meanwhile and left the lists (it started over an hour ago) is named by no
    // message, and would stay under "Open incidents" for good.
    const initial = async () => {
      const [open, resolved] = await nowLists(now(), 0);
      const rows = [...open.incidents, ...resolved.incidents].map((i) => i.incident_id).reverse();
      return [OPEN_NOW, ...rows];
    };
    return streamIncidentChanges(
      c,
      hub,
      async (id) => {
        if (id === OPEN_NOW) {
          // Read when sent: whatever changes later is published, and sent, after it.
          const open = await incidents.list({
            state: "open",
            limit: NOW_LIMIT,
            sensorsPerIncident: 0,
          });
          return JSON.stringify({ open_now: open.incidents.map((i) => i.incident_id) });
        }
        const incident = await incidents.summary(id, 3);
        if (!incident) return undefined;
        // The page's rule: a resolved incident is listed when it started in the last hour. An
        // older one (a verdict given from its own page) goes from the lists, not into them.
        const listed =
          incident.state === "open" || Date.parse(incident.started_at) >= now() - HOUR_MS;
        const notified = listed ? await incidentsNotified(database.sql, [id]) : undefined;
        const row = listed
          ? (
              await (
                <IncidentRow incident={incident} now={now()} notified={notified?.get(id) ?? null} />
              )
            ).toString()
          : "";
        return JSON.stringify({
          incident_id: incident.incident_id,
          state: incident.state,
          started_at: incident.started_at,
          row,
        });
      },
      undefined,
      initial,
    );
  });

  async function incidentPage(
    c: Context,
    id: string,
    error?: {
      status: number;
      /** Absent with `ackTaken`, which says it in its own words. */
      message?: string;
      /** The API's key of the field the message is about, marked invalid in the form. */
      field?: string;
      form?: "verdict";
      /** What was typed, shown again in the refused form. */
      values?: Record<string, string>;
      /** The acknowledgement that came first, when the form's was not recorded because of it. */
      ackTaken?: Acknowledgement;
    },
  ) {
    const [incident, similar, notified] = await Promise.all([
      incidents.get(id, 200, CHARTED_SENSORS),
      incidents.similar(id, { limit: 10, minShared: 1 }),
      incidentsNotified(database.sql, [id]),
    ]);
    if (!incident) {
      return page(
        c,
        <MessagePage title="No such incident" message={`There is no incident ${id}.`} />,
        404,
      );
    }
    return page(
      c,
      <IncidentPage
        incident={incident}
        now={now()}
        tokenRequired={auth.mode === "none" && consoleToken !== undefined}
        similar={similar}
        notified={notified.get(id) ?? null}
        notifyConfigured={options.notifications !== undefined}
        silence={incident.silence_id ? await options.silences.get(incident.silence_id) : undefined}
        error={error?.form === "verdict" ? undefined : error?.message}
        ackTaken={error?.ackTaken}
        verdictError={error?.form === "verdict" ? error.message : undefined}
        errorField={error?.field}
        values={error?.values}
        done={error ? undefined : doneOf(c.req.query("done"))}
      />,
      error?.status ?? 200,
    );
  }

  // Set by the redirect after an acknowledgement or a verdict: the page says it was recorded.
  const doneOf = (q: string | undefined) => (q === "ack" || q === "verdict" ? q : undefined);

  app.get("/incidents/:id", async function showIncident(c) {
    const id = routeIncidentId(c);
    if (typeof id !== "string") return id;
    return incidentPage(c, id);
  });

  app.post("/incidents/:id/ack", async function acknowledgeForm(c) {
    const id = routeIncidentId(c);
    if (typeof id !== "string") return id;
    // Read first, so that a refusal (no token, a field off) shows the form as it was typed.
    const form = await formBody(c);
    const typed = {
      by: typeof form.by === "string" ? form.by : undefined,
      note: typeof form.note === "string" ? form.note : undefined,
    };
    try {
      const who = await auth.require(c, "operator");
      const ack = parseAck(auth.named(typed, "by", who));
      const actor = auth.actor(who, ack.by);
      const result = await incidents.acknowledge(id, { ...ack, at: new Date(now()), actor });
      if (!result) return incidentPage(c, id);
      if (result.created) hub.publish(id);
      const first = result.acknowledgement;
      // Someone acknowledged first (the API's "first wins"): nothing of this form was recorded,
      // so the page says whose stands and keeps the note typed. The same form sent again (a
      // double click) is the one recorded.
      if (!result.created && (first.by !== ack.by || first.note !== ack.note)) {
        return incidentPage(c, id, {
          status: 409,
          ackTaken: first,
          values: { by: typed.by ?? "", note: typed.note ?? "" },
        });
      }
      return c.redirect(`/incidents/${id}?done=ack`, 303);
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      if (error.status >= 500) return notRecorded(c, error, typed, id);
      return incidentPage(c, id, {
        status: error.status,
        ...refusalFor(error, ACK_LABELS),
        values: { by: typed.by ?? "", note: typed.note ?? "" },
      });
    }
  });

  app.post("/incidents/:id/verdict", async function verdictForm(c) {
    const id = routeIncidentId(c);
    if (typeof id !== "string") return id;
    // Read first, so that a refusal (no token, a field off) shows the form as it was typed.
    const typed = verdictFromForm(await formBody(c));
    try {
      const who = await auth.require(c, "operator");
      const verdict = parseVerdict(auth.named(typed, "by", who));
      const actor = auth.actor(who, verdict.by);
      const result = await incidents.giveVerdict(id, { ...verdict, at: new Date(now()), actor });
      if (!result) return incidentPage(c, id);
      hub.publish(id);
      return c.redirect(`/incidents/${id}?done=verdict`, 303);
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      if (error.status >= 500) return notRecorded(c, error, typed, id);
      return incidentPage(c, id, {
        status: error.status,
        ...refusalFor(error, VERDICT_FORM_LABELS),
        form: "verdict",
        values: typed,
      });
    }
  });

  app.post("/console-token", async function setConsoleToken(c) {
    const form = await formBody(c);
    const back = returnPath(form.return);
    const token = typeof form.token === "string" ? form.token : "";
    if (!consoleToken) return tokenNotAccepted(c, back, NOT_THE_TOKEN, 401);
    // Another site's page can make a visitor's browser post this form: not counted, or any site
    // could lock a visitor's address out (as sign-in's form).
    if (!auth.sameSite(c)) {
      auth.refused(c, "cross-site console token form");
      return tokenNotAccepted(c, back, NOT_THE_TOKEN, 401);
    }
    if (!(await sameSecret(token, consoleToken))) {
      // As sign-in's token form: a wrong token meets the limit after the check, so the right one
      // is stored whatever its address did before (behind a reverse proxy browsers share one).
      try {
        auth.checkLimit(c);
      } catch (error) {
        if (!(error instanceof HttpError)) throw error;
        c.header("Retry-After", error.headers?.["Retry-After"] ?? "60");
        return tokenNotAccepted(c, back, error.message, 429);
      }
      if (token) auth.failed(c, "console token form");
      else auth.refused(c, "console token form without a token");
      return tokenNotAccepted(c, back, NOT_THE_TOKEN, 401);
    }
    setCookie(c, TOKEN_COOKIE, token, {
      httpOnly: true,
      sameSite: "Strict",
      path: "/",
      // The session cookie's rule: behind an https PUBLIC_URL the request itself may say http.
      secure: auth.secureCookie(c),
      maxAge: 30 * 86_400,
    });
    // The page it goes back to says so: otherwise it looks just as before.
    return c.redirect(withStoredMark(back), 303);
  });

  app.get("/overview", async function overviewPage(c) {
    const period = c.req.query("period") ?? "24h";
    // Own keys only: `constructor` or `__proto__` is no period.
    const chosen = Object.hasOwn(PERIODS, period) ? PERIODS[period] : undefined;
    if (!chosen) {
      return page(
        c,
        <MessagePage
          title="Unknown period"
          message={`The period must be one of ${Object.keys(PERIODS).join(", ")}.`}
        />,
        400,
      );
    }
    const to = new Date(now());
    const from = new Date(to.getTime() - chosen.ms);
    const map = await incidents.heatmap({ from, to, buckets: 24, sensors: 25 });
    return page(c, <OverviewPage map={map} period={period} />);
  });

  app.route(
    "/",
    qualityConsoleRoutes({
      quality: options.quality,
      silences: options.silences,
      now,
      auth,
      consoleToken,
      render: page,
    }),
  );
  app.route(
    "/",
    silenceConsoleRoutes({ silences: options.silences, now, auth, consoleToken, render: page }),
  );
  if (options.retirements) {
    app.route(
      "/",
      retireFormRoutes({
        retirements: options.retirements,
        auth,
        lastListed: options.lastListed,
        render: page,
      }),
    );
  }
  if (options.resender) {
    app.route("/", deadLetterFormRoutes({ resender: options.resender, auth, render: page }));
  }

  /**
   * The Health page; with a refused activation, its message beside that model's form, which keeps
   * what was typed (`status` the refusal's).
   */
  async function healthPage(c: Context, activateRefused?: ActivateRefusal, status = 200) {
    const [health, reachable, notifications, databaseHealth, retired] = await Promise.all([
      engine ? engine.read() : Promise.resolve(null),
      database.ping(AbortSignal.timeout(2000)).then(
        () => true,
        () => false,
      ),
      options.notifications
        ? withinMs(options.notifications.status(), 2000, "the notification outbox").catch(
            (error: Error) => ({ error: error.message }),
          )
        : null,
      readDatabaseHealth(database, AbortSignal.timeout(2000)).catch((error: Error) => ({
        error: error.message,
      })),
      // With the database down the page still answers (it says the database is unreachable).
      withinMs(retiredNow(), 2000, "the retirements").catch(() => []),
    ]);
    // Set by the redirect after "Retrain now"; only a model name is ever shown.
    const retrained = c.req.query("retrain");
    // Set by the redirect after a dead letter's "Re-send"; only a message id is ever shown.
    const resent = c.req.query("resent");
    // Set by the redirect after "Activate"; the page says what its model scores with now.
    const activated = activateRefused ? undefined : c.req.query("activated");
    return page(
      c,
      <HealthPage
        health={health}
        database={{ kind: database.kind, reachable }}
        databaseHealth={databaseHealth}
        notifications={notifications}
        resent={resent && MESSAGE_ID_PATTERN.test(resent) ? resent : undefined}
        retrainNow={options.retrain !== undefined}
        retrained={retrained && MODEL_NAME_PATTERN.test(retrained) ? retrained : undefined}
        activated={
          activated && MODEL_NAME_PATTERN.test(activated)
            ? { model: activated, unchanged: c.req.query("unchanged") === "1" }
            : undefined
        }
        activateRefused={activateRefused}
        tokenRequired={auth.mode === "none" && consoleToken !== undefined}
        retention={options.retention}
        now={now()}
        retired={retired}
      />,
      status,
    );
  }

  app.get("/status", (c) => healthPage(c));

  app.get("/models/:name/retrains/:version", async function retrainReportPage(c) {
    try {
      if (!options.readReport) {
        throw new HttpError(404, "not_found", "retraining reports are not set up: no engine URL.");
      }
      const report = await options.readReport(c.req.param("name"), c.req.param("version"));
      // A candidate promoted but not activated by the run may have been activated since: the
      // engine's models say which version it serves now (when it cannot say, the report's words).
      const active =
        report.decision === "promoted" && !report.activated && engine
          ? await withinMs(engine.read(), 3000, "the engine's models")
              .then((health) =>
                "models" in health.models
                  ? health.models.models.find((m) => m.name === report.model)?.active_version
                  : undefined,
              )
              .catch(() => undefined)
          : undefined;
      return page(c, <RetrainReportPage report={report} active={active} />);
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      return page(
        c,
        <MessagePage
          title={REPORT_REFUSAL[error.code] ?? "No report"}
          message={error.message}
          back={HEALTH}
        />,
        error.status >= 500 ? 502 : error.status,
      );
    }
  });

  app.post("/models/:name/activate", async function activateForm(c) {
    const name = c.req.param("name");
    // What was typed, shown again in the refused form.
    let typed: Record<string, string> = {};
    try {
      if (!options.activate)
        throw new HttpError(404, "not_found", "model activation is not set up");
      // Read first, so that a refusal (no token, the engine's) shows the form as it was typed.
      const form = await formBody(c);
      const text = (k: string) => (typeof form[k] === "string" ? (form[k] as string) : undefined);
      // The checkbox "Start windows afresh": sent only when ticked.
      const ticked = form.reset_windows === "true";
      typed = {
        version: text("version") ?? "",
        reason: text("reason") ?? "",
        by: text("by") ?? "",
        reset_windows: ticked ? "true" : "",
      };
      const who = await auth.require(c, "admin");
      const body = v.safeParse(
        activateRequestSchema,
        auth.named(
          {
            version: text("version"),
            reason: text("reason"),
            by: text("by"),
            ...(ticked ? { reset_windows: true } : {}),
          },
          "by",
          who,
        ),
      );
      if (!body.success) throw issueRefusal(body.issues[0], MODEL_FORM_LABELS);
      // The form asks why; a reason of spaces is not one.
      if (!body.output.reason?.trim()) {
        throw new HttpError(400, "invalid_request", "“Why”: say why this version is activated");
      }
      const actor = auth.actor(who, body.output.by);
      const answer = await options.activate(name, body.output, actor);
      // The page it leads to says what the model scores with now, where the focus starts.
      const done = new URLSearchParams({
        activated: name,
        ...(answer.unchanged ? { unchanged: "1" } : {}),
      });
      return c.redirect(`/status?${done}`, 303);
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      // The engine may have switched (or may yet): a page of its own, never "nothing changed".
      if (error.code === "not_audited" || error.code === "activation_outcome_unknown") {
        const title =
          error.code === "not_audited" ? "Activated, not audited" : "Activation outcome unknown";
        return page(
          c,
          <MessagePage title={title} message={error.message} code={error.code} back={HEALTH} />,
          error.status >= 500 ? 502 : error.status,
        );
      }
      const refusal = activationRefusal(error, typed.reset_windows === "true");
      return healthPage(
        c,
        {
          model: name,
          ...refusal,
          message: refusalSentence(refusal, "Nothing changed."),
          values: typed,
        },
        error.status >= 500 ? 502 : error.status,
      );
    }
  });

  app.post("/models/:name/retrain", async function retrainForm(c) {
    try {
      if (!options.retrain)
        throw new HttpError(404, "not_found", "retraining through the console is not set up");
      const who = await auth.require(c, "admin");
      const form = await formBody(c);
      const body = v.safeParse(
        retrainRequestSchema,
        auth.named({ reason: filledField(form, "reason"), by: filledField(form, "by") }, "by", who),
      );
      if (!body.success) throw issueRefusal(body.issues[0], MODEL_FORM_LABELS);
      const actor = auth.actor(who, body.output.by);
      const name = c.req.param("name");
      await options.retrain(name, body.output, actor);
      return c.redirect(`/status?${new URLSearchParams({ retrain: name })}`, 303);
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      return page(
        c,
        <MessagePage
          title={
            error.code === "retrain_running"
              ? "Already retraining"
              : error.code === "not_audited"
                ? "Started, not audited"
                : "Not started"
          }
          message={
            error.code === "not_audited"
              ? error.message
              : refusalSentence(error, "Nothing was started.")
          }
          code={error.code}
          back={HEALTH}
        />,
        error.status >= 500 ? 502 : error.status,
      );
    }
  });

  app.get("/assets/:name", async function staticAsset(c) {
    assets ??= loadStaticAssets();
    const asset = (await assets).get(c.req.param("name"));
    if (!asset) throw new HttpError(404, "not_found", `no asset ${c.req.param("name")}`);
    if (c.req.header("if-none-match") === asset.etag) return c.body(null, 304);
    c.header("Content-Type", asset.type);
    c.header("ETag", asset.etag);
    c.header("Cache-Control", "no-cache");
    c.header("X-Content-Type-Options", "nosniff");
    return c.body(asset.body as Uint8Array<ArrayBuffer>);
  });

  return app;
}

/**
 * A refused activation in the form's words: the engine's `409 model_incompatible` asks to "send
 * reset_windows"; a person ticks the box “Start windows afresh”, which the message then names
 * (and marks) instead.
 */
function activationRefusal(error: HttpError, ticked: boolean): { message: string; field?: string } {
  if (error.code !== "model_incompatible") {
    const refusal = refusalFor(error, MODEL_FORM_LABELS);
    // The form's own checks (issueRefusal) start with the label of the field they refuse.
    const field =
      refusal.field ??
      Object.keys(MODEL_FORM_LABELS).find((k) =>
        refusal.message.startsWith(`“${MODEL_FORM_LABELS[k]}”`),
      );
    return { message: refusal.message, field };
  }
  const box = `“${RESET_LABEL}”`;
  const named = error.message
    .replace(/\bsend\s+"?reset_windows"?(?:\s*:\s*true)?/g, `tick ${box}`)
    .replace(/"?\breset_windows\b"?/g, box);
  if (ticked) return { message: named };
  const message = named.includes(box)
    ? named
    : `${named.replace(/[.\s]*$/, "")}; tick ${box} to start the streams' windows afresh`;
  return { message, field: "reset_windows" };
}

/** Why the console token form stored nothing, when the token was not this console's. */
const NOT_THE_TOKEN = "That is not this console's token; nothing was stored.";

/** The console token form's refusal (401, or 429 once its address failed too often), leading back. */
function tokenNotAccepted(c: Context, back: string, message: string, status: 401 | 429) {
  return page(
    c,
    <MessagePage
      title="Token not accepted"
      message={message}
      back={{ href: back, label: "Back to the page you came from" }}
    />,
    status,
  );
}

/**
 * Where the console-token form goes back to: a page of this console with its query kept
 * (`/quality?weeks=4&stream_id=line-a`), anything else `/` (never another site: no `//host`).
 */
export function returnPath(value: unknown): string {
  if (typeof value !== "string" || !value.startsWith("/") || /^\/[/\\]/.test(value)) return "/";
  const base = "http://console.invalid";
  let url: URL;
  try {
    url = new URL(value, base);
  } catch {
    return "/";
  }
  if (url.origin !== base || !/^\/(?!\/)[\w/-]*$/.test(url.pathname)) return "/";
  return url.pathname + url.search;
}

/**
 * `work`, or a rejection naming `what` once `ms` have passed (the work goes on unawaited): a page
 * answers even while a query waits on a lock.
 */
function withinMs<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  // A late failure of the work is not an unhandled rejection.
  work.catch(() => {});
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}
