// HTTP routes re-sending dead letters (admin): one message, or every dead letter of a route.
import { type Context, Hono } from "hono";
import { HttpError } from "../../contracts/error.ts";
import { bodyText, parseBody } from "../_parse_body.ts";
import { parseQuery } from "../alerts/_query_params.ts";
import type { Auth } from "../auth/auth.ts";
import { notificationListQuerySchema } from "./dead_letter_list.ts";
import { type DeadLetterResender, resendRequestSchema } from "./dead_letter_resend.ts";

/** The body as JSON, `{}` when empty (the reason is optional), or 400 `invalid_json`. */
async function optionalJson(c: Context): Promise<unknown> {
  const text = await bodyText(c.req);
  if (text.trim() === "") return {};
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new HttpError(400, "invalid_json", `body is not JSON: ${(error as Error).message}`);
  }
}

/** The states `GET /notifications` lists (`state` is required: see `notificationListQuerySchema`). */
const LISTED_STATES = ["dead"];

/**
 * 400 `invalid_request` unless `state` names a listed state, said plainly: the schema's own
 * answer for a missing key read `'state' must be Invalid key: Expected "state" but received
 * undefined`.
 */
function stateListed(state: string | undefined): void {
  if (state !== undefined && LISTED_STATES.includes(state)) return;
  const given =
    state === undefined
      ? "none was given"
      : `got ${JSON.stringify(state.length > 64 ? `${state.slice(0, 64)}…` : state)}`;
  throw new HttpError(
    400,
    "invalid_request",
    `'state' must be one of ${LISTED_STATES.join(", ")} (the only state listed), ${given}`,
  );
}

/**
 * Mounted under `/api/v1`: `GET /notifications?state=dead` (any signed-in role, as the Health
 * page's dead letters are), `POST /notifications/:message_id/retry` and
 * `POST /notifications/routes/:route/retry`, each with an optional `{"reason"?}` (admin).
 */
export function deadLetterRoutes(options: { auth: Auth; resender: DeadLetterResender }): Hono {
  const { auth, resender } = options;
  const app = new Hono();

  /** Who asks and why, as the audit records it. */
  async function request(c: Context) {
    const who = await auth.require(c, "admin");
    const body = parseBody(
      resendRequestSchema,
      auth.named(await optionalJson(c), "by", who),
      "a re-send",
    );
    return { body, actor: auth.actor(who, body.by) };
  }

  // Reading needs no role beyond signing in: auth's middleware refuses anyone else.
  app.get("/notifications", async function listNotifications(c) {
    const query = c.req.query();
    stateListed(query.state);
    const q = parseQuery(notificationListQuerySchema, query);
    return c.json(await resender.list(q));
  });

  app.post("/notifications/routes/:route/retry", async function resendRoute(c) {
    const { body, actor } = await request(c);
    const route = c.req.param("route");
    return c.json({ status: "ok", route, ...(await resender.resendRoute(route, body, actor)) });
  });

  app.post("/notifications/:message_id/retry", async function resendMessage(c) {
    const { body, actor } = await request(c);
    const message = await resender.resend(c.req.param("message_id"), body, actor);
    return c.json({ status: "ok", message: { ...message, state: "pending" } });
  });

  return app;
}
