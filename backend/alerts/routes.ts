// HTTP routes for alerts: the engine's POST and the query API (list, one, summary).
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import * as v from "valibot";
import { alertIntakeSchema } from "../../contracts/alert.ts";
import { webPageRefusal } from "../../contracts/auth.ts";
import { HttpError } from "../../contracts/error.ts";
import { verifyWebhook } from "../../contracts/webhook_signature.ts";
import type { BackendMetrics } from "../../telemetry/metrics.ts";
import { bodyText } from "../_parse_body.ts";
import { decodeCursor } from "./_cursor.ts";
import { listQuerySchema, parseQuery, summaryQuerySchema } from "./_query_params.ts";
import type { AlertRepository, NewAlert } from "./alert_repository.ts";
import { toNewAlert } from "./to_new_alert.ts";

export interface AlertRoutesOptions {
  alerts: AlertRepository;
  /** When set, every POST must carry a valid Standard Webhooks signature. */
  signingSecret?: string;
  /** Milliseconds since the epoch; the signature's freshness is judged against it. */
  now: () => number;
  metrics?: BackendMetrics;
  /** Called after a new alert was stored (not for a repeat): the console's live updates. */
  onStored?: (alert: NewAlert) => void;
  /** The silence an alert falls under (its `silence_id`), looked up before storing. */
  silenceOf?: (alert: NewAlert) => Promise<string | null>;
  /** Largest accepted alert body (16 MiB: 100,000 listed features fit). */
  maxBodyBytes?: number;
}

const UUID = /^[\da-f]{8}(?:-[\da-f]{4}){3}-[\da-f]{12}$/i;

function contractMessage(issues: v.BaseIssue<unknown>[]): string {
  const issue = issues[0];
  const path = v.getDotPath(issue);
  return path ? `${path}: ${issue.message}` : issue.message;
}

/**
 * Refuses a body sent with a `Content-Encoding` other than identity (`415 unsupported_encoding`,
 * `Accept-Encoding: identity`), before a byte of it is read: the backend decompresses nothing, so
 * a gzip body would be read as garbled JSON, and a plain body labelled `br` is not what it says.
 */
function identityOnly(header: string | undefined): void {
  if (header === undefined) return;
  const codings = header.split(",").map((c) => c.trim().toLowerCase());
  if (codings.every((c) => c === "identity" || c === "")) return;
  const named = JSON.stringify(header.length > 64 ? `${header.slice(0, 64)}…` : header);
  throw new HttpError(
    415,
    "unsupported_encoding",
    `Content-Encoding ${named} is not supported: send the alert uncompressed (identity)`,
    { "Accept-Encoding": "identity" },
  );
}

/**
 * Mounted under `/api/v1`: `POST /alert`, `GET /alerts`, `GET /alerts/summary`, `GET /alerts/:id`.
 */
export function alertRoutes(options: AlertRoutesOptions): Hono {
  const { alerts, signingSecret, now, metrics } = options;
  const maxSize = options.maxBodyBytes ?? 16 * 1024 * 1024;
  const app = new Hono();
  const rejected = (reason: string) => metrics?.alertsRejected.add(1, { reason });

  app.post(
    "/alert",
    async function encodingMustBeIdentity(c, next) {
      try {
        identityOnly(c.req.header("content-encoding"));
      } catch (error) {
        rejected("unsupported_encoding");
        throw error;
      }
      await next();
    },
    bodyLimit({
      maxSize,
      onError: () => {
        rejected("payload_too_large");
        throw new HttpError(413, "payload_too_large", `alert body over ${maxSize} bytes`);
      },
    }),
    async function receiveAlert(c) {
      if (!signingSecret) {
        const page = webPageRefusal(
          c.req.header("origin"),
          c.req.header("sec-fetch-site"),
          "set ALERT_SIGNING_SECRET for alerts from elsewhere",
        );
        if (page) {
          rejected("cross_site");
          throw new HttpError(403, "cross_site", page);
        }
      }
      const raw = await bodyText(c.req);
      if (signingSecret) {
        await verifyWebhook({
          secret: signingSecret,
          headers: c.req.raw.headers,
          body: raw,
          now: Math.floor(now() / 1000),
        }).catch((error) => {
          rejected("invalid_signature");
          throw error;
        });
      }
      let json: unknown;
      try {
        json = JSON.parse(raw);
      } catch (error) {
        rejected("invalid_json");
        throw new HttpError(400, "invalid_json", `body is not JSON: ${(error as Error).message}`);
      }
      const parsed = v.safeParse(alertIntakeSchema, json);
      if (!parsed.success) {
        rejected("invalid_alert");
        throw new HttpError(422, "invalid_alert", contractMessage(parsed.issues));
      }
      const alert = await toNewAlert(parsed.output, raw).catch((error) => {
        rejected("invalid_alert");
        throw error;
      });
      if (options.silenceOf) alert.silence_id = await options.silenceOf(alert);
      const outcome = await alerts.insert(alert);
      if (outcome === "stored") {
        metrics?.alertsStored.add(1);
        options.onStored?.(alert);
      } else metrics?.alertsDuplicate.add(1);
      return c.json({ status: "ok", alert_id: alert.alert_id }, 201);
    },
  );

  app.get("/alerts", async function listAlerts(c) {
    const q = parseQuery(listQuerySchema, c.req.query());
    const page = await alerts.list({
      streamId: q.stream_id,
      from: q.from,
      to: q.to,
      featureIdx: q.feature_idx,
      minScore: q.min_score,
      limit: q.limit,
      cursor: q.cursor === undefined ? undefined : decodeCursor(q.cursor),
      featuresPerAlert: q.features,
    });
    return c.json(page);
  });

  app.get("/alerts/summary", async function summariseAlerts(c) {
    const q = parseQuery(summaryQuerySchema, c.req.query());
    return c.json(await alerts.summary({ from: q.from, to: q.to, top: q.top }));
  });

  app.get("/alerts/:id", async function getAlert(c) {
    const id = c.req.param("id");
    if (!UUID.test(id)) {
      throw new HttpError(400, "invalid_request", `'id' must be a UUID, got ${JSON.stringify(id)}`);
    }
    const alert = await alerts.get(id.toLowerCase());
    if (!alert) throw new HttpError(404, "not_found", `no alert ${id}`);
    return c.json(alert);
  });

  return app;
}
