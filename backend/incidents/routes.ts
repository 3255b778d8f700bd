// HTTP routes for incidents: list, heatmap, live stream (SSE), one with its timeline, similar ones, acknowledge, verdict.
import { type Context, Hono } from "hono";
import type * as v from "valibot";
import { HttpError } from "../../contracts/error.ts";
import { bodyText, parseBody } from "../_parse_body.ts";
import { decodeCursor } from "../alerts/_cursor.ts";
import { parseQuery } from "../alerts/_query_params.ts";
import type { Auth } from "../auth/auth.ts";
import {
  ackBodySchema,
  heatmapSchema,
  incidentListSchema,
  verdictBodySchema,
} from "./_query_params.ts";
import type { IncidentHub } from "./incident_hub.ts";
import type { IncidentRepository } from "./incident_repository.ts";
import { streamIncidentChanges } from "./incident_stream.ts";
import { similarQuerySchema } from "./similar_incidents.ts";

export interface IncidentRoutesOptions {
  incidents: IncidentRepository;
  hub: IncidentHub;
  /** Who may act: acknowledging and giving a verdict need the operator role. */
  auth: Auth;
  now: () => number;
  /** Seconds between keep-alive comments on the event stream. */
  keepAliveS?: number;
}

const UUID = /^[\da-f]{8}(?:-[\da-f]{4}){3}-[\da-f]{12}$/i;

/** The `:id` path parameter as a lower-case UUID, or 400 `invalid_request`. */
export function incidentIdParam(id: string): string {
  if (!UUID.test(id)) {
    throw new HttpError(400, "invalid_request", `'id' must be a UUID, got ${JSON.stringify(id)}`);
  }
  return id.toLowerCase();
}

/** Parses an acknowledgement body (JSON object) or answers 400 naming the field. */
export function parseAck(input: unknown): v.InferOutput<typeof ackBodySchema> {
  return parseBody(ackBodySchema, input, "an acknowledgement");
}

/** Parses a verdict body (JSON object) or answers 400 naming the field. */
export function parseVerdict(input: unknown): v.InferOutput<typeof verdictBodySchema> {
  return parseBody(verdictBodySchema, input, "a verdict");
}

/** The request body as JSON, or 400 `invalid_json`. */
async function jsonBody(c: Context): Promise<unknown> {
  const text = await bodyText(c.req);
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new HttpError(400, "invalid_json", `body is not JSON: ${(error as Error).message}`);
  }
}

/**
 * Mounted under `/api/v1`: `GET /incidents`, `GET /incidents/heatmap`, `GET /incidents/stream`
 * (server-sent events: `incident` with the changed incident's summary), `GET /incidents/:id`,
 * `GET /incidents/:id/similar` (earlier incidents of the same model with overlapping sensors),
 * `POST /incidents/:id/ack`, `POST /incidents/:id/verdict`.
 */
export function incidentRoutes(options: IncidentRoutesOptions): Hono {
  const { incidents, hub, auth, now } = options;
  const keepAliveMs = (options.keepAliveS ?? 20) * 1000;
  const app = new Hono();

  app.get("/incidents", async function listIncidents(c) {
    const q = parseQuery(incidentListSchema, c.req.query());
    return c.json(
      await incidents.list({
        state: q.state,
        acknowledged: q.acknowledged,
        verdict: q.verdict,
        streamId: q.stream_id,
        featureIdx: q.feature_idx,
        from: q.from,
        to: q.to,
        limit: q.limit,
        cursor: q.cursor === undefined ? undefined : decodeCursor(q.cursor),
        sensorsPerIncident: q.sensors,
      }),
    );
  });

  app.get("/incidents/heatmap", async function incidentHeatmap(c) {
    const q = parseQuery(heatmapSchema, c.req.query());
    const to = q.to ?? new Date(now());
    const from = q.from ?? new Date(to.getTime() - 3_600_000);
    if (from >= to) throw new HttpError(400, "invalid_request", "'from' must be before 'to'");
    return c.json(await incidents.heatmap({ from, to, buckets: q.buckets, sensors: q.sensors }));
  });

  app.get("/incidents/stream", function streamIncidents(c) {
    return streamIncidentChanges(
      c,
      hub,
      async (id) => {
        const incident = await incidents.summary(id);
        return incident && JSON.stringify(incident);
      },
      keepAliveMs,
    );
  });

  app.get("/incidents/:id", async function getIncident(c) {
    const id = incidentIdParam(c.req.param("id"));
    const incident = await incidents.get(id);
    if (!incident) throw new HttpError(404, "not_found", `no incident ${id}`);
    return c.json(incident);
  });

  app.get("/incidents/:id/similar", async function similarIncidents(c) {
    const id = incidentIdParam(c.req.param("id"));
    const q = parseQuery(similarQuerySchema, c.req.query());
    const found = await incidents.similar(id, { limit: q.limit, minShared: q.min_shared });
    if (!found) throw new HttpError(404, "not_found", `no incident ${id}`);
    return c.json(found);
  });

  app.post("/incidents/:id/ack", async function acknowledgeIncident(c) {
    const who = await auth.require(c, "operator");
    const id = incidentIdParam(c.req.param("id"));
    const ack = parseAck(auth.named(await jsonBody(c), "by", who));
    const actor = auth.actor(who, ack.by);
    const result = await incidents.acknowledge(id, { ...ack, at: new Date(now()), actor });
    if (!result) throw new HttpError(404, "not_found", `no incident ${id}`);
    if (result.created) hub.publish(id);
    return c.json(
      { status: "ok", incident_id: id, acknowledged: result.acknowledgement },
      result.created ? 201 : 200,
    );
  });

  // A verdict is a new row each time: 201 for an incident's first, 200 for a change.
  app.post("/incidents/:id/verdict", async function giveVerdict(c) {
    const who = await auth.require(c, "operator");
    const id = incidentIdParam(c.req.param("id"));
    const body = parseVerdict(auth.named(await jsonBody(c), "by", who));
    const actor = auth.actor(who, body.by);
    const result = await incidents.giveVerdict(id, { ...body, at: new Date(now()), actor });
    if (!result) throw new HttpError(404, "not_found", `no incident ${id}`);
    hub.publish(id);
    return c.json(
      { status: "ok", incident_id: id, verdict: result.verdict },
      result.first ? 201 : 200,
    );
  });

  return app;
}
