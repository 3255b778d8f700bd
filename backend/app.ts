// The backend's Hono app: alert intake and queries, incidents, the console, health, and the simulator's endpoints.
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HttpError } from "../contracts/error.ts";
import { answerUnrouted } from "../contracts/unrouted.ts";
import { otelMiddleware } from "../telemetry/hono.ts";
import type { Logger } from "../telemetry/logger.ts";
import type { BackendMetrics } from "../telemetry/metrics.ts";
import { bodyDeadline } from "./_parse_body.ts";
import { createAlertRepository } from "./alerts/alert_repository.ts";
import { alertRoutes } from "./alerts/routes.ts";
import { createAuditRepository } from "./audit/audit_repository.ts";
import { auditRoutes } from "./audit/routes.ts";
import { type Auth, createAuth } from "./auth/auth.ts";
import { signInRoutes } from "./auth/signin_routes.tsx";
import type { EngineMonitor } from "./console/engine_monitor.ts";
import { consoleErrorPage, wantsConsolePage } from "./console/error_page.tsx";
import { consoleRoutes } from "./console/routes.tsx";
import type { Database } from "./db/database.ts";
import { decisionFeedRoutes } from "./decisions/feed_routes.ts";
import { healthRoutes } from "./health_routes.ts";
import { createIncidentHub, type IncidentHub } from "./incidents/incident_hub.ts";
import { createIncidentRepository } from "./incidents/incident_repository.ts";
import { createQualityRepository } from "./incidents/quality_repository.ts";
import { qualityRoutes } from "./incidents/quality_routes.ts";
import { incidentRoutes } from "./incidents/routes.ts";
import { createModelActivator, modelActivationRoutes } from "./models/model_activation.ts";
import { createRetrainReportReader, modelReportRoutes } from "./models/model_report.ts";
import { createModelRetrainer, modelRetrainRoutes } from "./models/model_retrain.ts";
import { createDeadLetterResender } from "./notify/dead_letter_resend.ts";
import { deadLetterRoutes } from "./notify/dead_letter_routes.ts";
import type { NotificationDispatcher } from "./notify/notification_dispatcher.ts";
import { silenceRoutes } from "./silences/routes.ts";
import { createSilenceRepository } from "./silences/silence_repository.ts";
import { simulatorRoutes } from "./simulator/routes.ts";
import type { Simulator } from "./simulator/simulator.ts";
import { createRetirementRepository } from "./streams/retirement_repository.ts";
import { streamRoutes } from "./streams/routes.ts";

export interface BackendAppOptions {
  database: Pick<Database, "sql" | "kind" | "ping" | "recover">;
  /** Milliseconds since the epoch (tests pass a fixed clock to check signature freshness). */
  clock?: { now(): number };
  /** The plant simulator; without it `/data/*` answers 404. */
  simulator?: Simulator;
  /** Standard Webhooks secret; when set, unsigned or badly signed alerts get 401. */
  signingSecret?: string;
  log?: Logger;
  metrics?: BackendMetrics;
  /** Readiness reports `draining` once this returns true (during shutdown). */
  isDraining?: () => boolean;
  /** `BODY_TIMEOUT_MS`: how long after a request began its body must have arrived (default 10 s). */
  bodyTimeoutMs?: number;
  /**
   * Who may read and act (backend/auth). Absent: `AUTH_MODE=none`, where acting needs
   * `consoleToken` when set (bearer token or the console's cookie).
   */
  auth?: Auth;
  consoleToken?: string;
  /** Extra routes mounted before the rest (the OIDC sign-in under `/auth`). */
  signInProvider?: {
    path: string;
    routes: Hono;
    /** Where signing out continues (the provider's end-session page), when it has one. */
    endSessionUrl?: () => Promise<string | undefined>;
  };
  /** Live incident notices; pass one to close its event streams at shutdown. */
  hub?: IncidentHub;
  /** The engine's health, read server-side for the console's Health page. */
  engine?: EngineMonitor;
  /** The notification outbox's state for the Health page; absent: no routes configured. */
  notifications?: Pick<NotificationDispatcher, "status">;
  /** Where model activations, retraining requests and report reads go (the engine's URL and `ADMIN_TOKEN`); absent: 404. */
  modelActivation?: { engineUrl: string; adminToken?: string };
  /** The retention settings in force (`retentionSettings(config)`), shown on the Health page. */
  retention?: Parameters<typeof consoleRoutes>[0]["retention"];
}

/** The largest body of a person's request (a silence with 1,000 sensor globs of 500 characters fits). */
export const OPERATOR_MAX_BODY_BYTES = 1024 * 1024;

/**
 * Builds the backend's HTTP app. Runtime-neutral: serve it with @hono/node-server or Deno.serve.
 *
 * @example
 * const app = createBackendApp({ database: await openDatabase(), signingSecret });
 * const res = await app.request("/api/v1/alerts");
 */
export function createBackendApp(options: BackendAppOptions): Hono {
  const { database, simulator, signingSecret, log, metrics } = options;
  const now = options.clock ? () => options.clock!.now() : () => Date.now();
  const draining = options.isDraining ?? (() => false);
  const app = new Hono();
  app.use(otelMiddleware("backend"));
  // Errors echo what was asked (`not found: /assets/<img …>`): no browser may read JSON as a page.
  app.use(async function noSniffing(c, next) {
    await next();
    c.res.headers.set("X-Content-Type-Options", "nosniff");
  });
  const auth =
    options.auth ?? createAuth({ mode: "none", consoleToken: options.consoleToken, log });
  // Every body but an alert's (which has its own limit) is a person's request, read whole before
  // it is validated: refused past OPERATOR_MAX_BODY_BYTES. Before the auth middleware, which
  // knows a request by its object (the limit wraps the request in a new one).
  const operatorBodyLimit = bodyLimit({
    maxSize: OPERATOR_MAX_BODY_BYTES,
    onError: () => {
      throw new HttpError(
        413,
        "payload_too_large",
        `request body over ${OPERATOR_MAX_BODY_BYTES} bytes`,
      );
    },
  });
  app.use((c, next) => (c.req.path === "/api/v1/alert" ? next() : operatorBodyLimit(c, next)));
  app.use(bodyDeadline(options.bodyTimeoutMs ?? 10_000));
  // Errors thrown by the auth middleware (401, 429) answer like every other route's.
  app.use(auth.middleware);
  const audit = createAuditRepository(database);
  app.route(
    "/",
    signInRoutes({ auth, audit, now, endSessionUrl: options.signInProvider?.endSessionUrl }),
  );
  if (options.signInProvider) app.route(options.signInProvider.path, options.signInProvider.routes);

  app.route("/health", healthRoutes({ database, now, isDraining: draining }));
  const hub = options.hub ?? createIncidentHub();
  const incidents = createIncidentRepository(database, now);
  const silences = createSilenceRepository(database, now);
  app.route(
    "/api/v1",
    alertRoutes({
      alerts: createAlertRepository(database),
      signingSecret,
      now,
      metrics,
      onStored: (alert) => {
        if (alert.incident) hub.publish(alert.incident.incident_id);
      },
      silenceOf: silences.forAlert,
    }),
  );
  // The feeds first: `/silences/effective` is not a silence id.
  app.route("/api/v1", decisionFeedRoutes({ silences, database, now }));
  app.route("/api/v1", silenceRoutes({ silences, auth }));
  const retirements = createRetirementRepository(database, now);
  // What the engine lists now (its short deadline, then the last answer's failure): none, when
  // it cannot say; the stream's open silent episode then dates it.
  const lastListed = async (streamId: string) => {
    const state = await options.engine?.nowState();
    const listed = state?.reachable
      ? state.silent?.find((s) => s.stream_id === streamId)
      : undefined;
    return listed ? new Date(listed.last_accepted_at) : undefined;
  };
  app.route("/api/v1", streamRoutes({ retirements, auth, lastListed }));
  app.route("/api/v1", incidentRoutes({ incidents, hub, auth, now }));
  app.route("/api/v1", auditRoutes({ audit, auth }));
  // Also without routes configured here: another backend sharing the database may deliver them.
  const resender = createDeadLetterResender(database, now);
  app.route("/api/v1", deadLetterRoutes({ auth, resender }));
  const activate = options.modelActivation
    ? createModelActivator({ ...options.modelActivation, audit, now })
    : undefined;
  if (activate) app.route("/api/v1", modelActivationRoutes({ auth, activate }));
  const retrain = options.modelActivation
    ? createModelRetrainer({ ...options.modelActivation, audit, now })
    : undefined;
  if (retrain) app.route("/api/v1", modelRetrainRoutes({ auth, retrain }));
  const readReport = options.modelActivation
    ? createRetrainReportReader(options.modelActivation)
    : undefined;
  if (readReport) app.route("/api/v1", modelReportRoutes({ read: readReport }));
  const quality = createQualityRepository(database);
  app.route("/api/v1", qualityRoutes({ quality, now }));
  if (simulator) {
    app.route("/data", simulatorRoutes(simulator, auth, { repository: audit, now }));
  }
  app.route(
    "/",
    consoleRoutes({
      incidents,
      hub,
      now,
      auth,
      consoleToken: options.consoleToken,
      activate,
      retrain,
      readReport,
      engine: options.engine,
      database,
      notifications: options.notifications,
      resender,
      quality,
      silences,
      retention: options.retention,
      retirements,
      lastListed,
    }),
  );

  app.notFound(answerUnrouted(app));
  app.onError(function answerError(error, c) {
    let http: HttpError;
    if (error instanceof HttpError && error.code === "body_incomplete" && draining()) {
      // A body cut by the stop (Deno's shutdown fails its read), not by its client: a `400`
      // would tell an engine to drop the alert, a `503` to send it again.
      http = new HttpError(503, "shutting_down", "the backend is stopping; send it again", {
        "retry-after": "1",
      });
    } else if (error instanceof HttpError) {
      // A 503 for the database out of reach names the database's own error (`cause`: refused
      // login, no such database, connection lost); the answer's body does not.
      if (error.status >= 500)
        log?.warn(error.message, {
          error_code: error.code,
          path: c.req.path,
          ...(error.cause instanceof Error ? { cause: error.cause.message } : {}),
        });
      http = error;
    } else {
      log?.error("unhandled error", error, { path: c.req.path, method: c.req.method });
      http = new HttpError(500, "internal_error", "internal error");
    }
    // A console page (the database down, a form too large) stays a page a person can leave by
    // its navigation; the API, the probes and scripts asking for JSON get the JSON.
    if (wantsConsolePage(c)) return consoleErrorPage(c, http);
    return c.json(http.body, http.status as 400, http.headers);
  });
  return app;
}
