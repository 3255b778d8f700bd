// HTTP routes for silences: create, list, read one, expire (DELETE); acting needs the console token.
import { type Context, Hono } from "hono";
import { HttpError } from "../../contracts/error.ts";
import { bodyText, parseBody } from "../_parse_body.ts";
import { decodeCursor } from "../alerts/_cursor.ts";
import { parseQuery } from "../alerts/_query_params.ts";
import type { Auth } from "../auth/auth.ts";
import { incidentIdParam } from "../incidents/routes.ts";
import type { SilenceRepository } from "./silence_repository.ts";
import { expireSilenceSchema, silenceListSchema } from "./silence_schemas.ts";

export interface SilenceRoutesOptions {
  silences: SilenceRepository;
  /** Who may act: creating and expiring need the operator role. */
  auth: Auth;
}

/** The request body as JSON (`undefined` when empty), or 400 `invalid_json`. */
async function jsonBody(c: Context): Promise<unknown> {
  const text = await bodyText(c.req);
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new HttpError(400, "invalid_json", `body is not JSON: ${(error as Error).message}`);
  }
}

/** The `:id` path parameter as a lower-case UUID, or 400 `invalid_request`. */
export const silenceIdParam = incidentIdParam;

/**
 * Mounted under `/api/v1`: `POST /silences`, `GET /silences?state=active|pending|expired`,
 * `GET /silences/:id`, `DELETE /silences/:id` (expires it now; the row stays).
 */
export function silenceRoutes(options: SilenceRoutesOptions): Hono {
  const { silences, auth } = options;
  const app = new Hono();

  app.post("/silences", async function createSilence(c) {
    const who = await auth.require(c, "operator");
    const raw = await jsonBody(c);
    // As an empty acknowledgement or verdict is answered: the same code for the same mistake.
    if (raw === undefined)
      throw new HttpError(400, "invalid_json", "body is not JSON: it is empty");
    const body = auth.named(raw, "created_by", who);
    const typed = (body as { created_by?: unknown } | undefined)?.created_by;
    const actor = auth.actor(who, typeof typed === "string" ? typed : undefined);
    const silence = await silences.create(body, actor);
    return c.json({ status: "ok", silence }, 201);
  });

  app.get("/silences", async function listSilences(c) {
    const q = parseQuery(silenceListSchema, c.req.query());
    return c.json(
      await silences.list({
        state: q.state,
        limit: q.limit,
        cursor: q.cursor === undefined ? undefined : decodeCursor(q.cursor),
      }),
    );
  });

  app.get("/silences/:id", async function getSilence(c) {
    const id = silenceIdParam(c.req.param("id"));
    const silence = await silences.get(id);
    if (!silence) throw new HttpError(404, "not_found", `no silence ${id}`);
    return c.json(silence);
  });

  // Who and why come in a JSON body, or as `?by=&reason=` for clients that send no DELETE body.
  app.delete("/silences/:id", async function expireSilence(c) {
    const who = await auth.require(c, "operator");
    const id = silenceIdParam(c.req.param("id"));
    const body = (await jsonBody(c)) ?? c.req.query();
    const by = parseBody(expireSilenceSchema, auth.named(body, "by", who), "a silence");
    const result = await silences.expire(id, by, auth.actor(who, by.by));
    if (!result) throw new HttpError(404, "not_found", `no silence ${id}`);
    return c.json({ status: "ok", changed: result.changed, silence: result.silence });
  });

  return app;
}
