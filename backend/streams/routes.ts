// HTTP routes for stream retirements: retire a decommissioned stream, end its retirement, list them; acting needs the operator role.
import { type Context, Hono } from "hono";
import { HttpError } from "../../contracts/error.ts";
import { bodyText, parseBody } from "../_parse_body.ts";
import { parseQuery } from "../alerts/_query_params.ts";
import type { Auth } from "../auth/auth.ts";
import type { RetirementRepository } from "./retirement_repository.ts";
import {
  retirementActionSchema,
  retirementListSchema,
  streamIdParam,
} from "./retirement_schemas.ts";

export interface StreamRoutesOptions {
  retirements: RetirementRepository;
  /** Who may act: retiring and ending a retirement need the operator role. */
  auth: Auth;
  /** The stream's last accepted frame as the engine lists it silent now (absent: not listed). */
  lastListed?: (streamId: string) => Promise<Date | undefined>;
}

/** The request body as JSON, or 400 `invalid_json` (empty included). */
async function jsonBody(c: Context): Promise<unknown> {
  const text = await bodyText(c.req);
  if (text.trim() === "") throw new HttpError(400, "invalid_json", "body is not JSON: it is empty");
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new HttpError(400, "invalid_json", `body is not JSON: ${(error as Error).message}`);
  }
}

/**
 * Mounted under `/api/v1`: `POST /streams/:stream_id/retirement` (201 with the record; 409
 * `already_retired`), `POST /streams/:stream_id/retirement/end` (200; 404 when none is in force),
 * `GET /streams/retirements?state=in_force|all`. Ending keeps the row.
 */
export function streamRoutes(options: StreamRoutesOptions): Hono {
  const { retirements, auth } = options;
  const app = new Hono();

  /** The action's stream and body, validated before anything is written. */
  async function action(c: Context) {
    const who = await auth.require(c, "operator");
    const streamId = streamIdParam(c.req.param("stream_id"));
    const raw = await jsonBody(c);
    const body = parseBody(retirementActionSchema, auth.named(raw, "by", who), "a retirement");
    return { streamId, body, actor: auth.actor(who, body.by) };
  }

  app.get("/streams/retirements", async function listRetirements(c) {
    const q = parseQuery(retirementListSchema, c.req.query());
    return c.json({ retirements: await retirements.list(q) });
  });

  app.post("/streams/:stream_id/retirement", async function retireStream(c) {
    const { streamId, body, actor } = await action(c);
    const listed = await options.lastListed?.(streamId).catch(() => undefined);
    const retirement = await retirements.retire(streamId, body, actor, listed);
    return c.json({ status: "ok", retirement }, 201);
  });

  app.post("/streams/:stream_id/retirement/end", async function endRetirement(c) {
    const { streamId, body, actor } = await action(c);
    const retirement = await retirements.end(streamId, body, actor);
    if (!retirement) throw new HttpError(404, "not_found", `stream ${streamId} is not retired`);
    return c.json({ status: "ok", retirement });
  });

  return app;
}
