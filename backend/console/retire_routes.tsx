// The console's forms on silent streams: retire a decommissioned one, watch a retired one again; then back to the page they were sent from.
import type { Context } from "hono";
import { Hono } from "hono";
import type { HtmlEscapedString } from "hono/utils/html";
import { HttpError } from "../../contracts/error.ts";
import { formBody, parseBody } from "../_parse_body.ts";
import type { Auth } from "../auth/auth.ts";
import type { RetirementRepository } from "../streams/retirement_repository.ts";
import { retirementActionSchema, streamIdParam } from "../streams/retirement_schemas.ts";
import { refusalSentence } from "./form_error.tsx";
import { MessagePage } from "./incident_page.tsx";

export interface RetireFormOptions {
  retirements: Pick<RetirementRepository, "retire" | "end">;
  /** Who may act: the operator role (under `AUTH_MODE=none`, the console token where set). */
  auth: Auth;
  /** The stream's last accepted frame as the engine lists it silent now. */
  lastListed?: (streamId: string) => Promise<Date | undefined>;
  /** Renders a page with the console's headers (routes.tsx's `page`). */
  render: (
    c: Context,
    element: HtmlEscapedString | Promise<HtmlEscapedString>,
    status?: number,
  ) => Promise<Response>;
}

/** Where a form goes back to: the page it was sent from (Now or Health), Health otherwise. */
function backTo(c: Context): { href: string; label: string } {
  const from = c.req.header("referer");
  const path = from ? URL.canParse(from) && new URL(from).pathname : undefined;
  return path === "/"
    ? { href: "/", label: "Back to Now" }
    : { href: "/status", label: "Back to Health" };
}

/**
 * Mounted at `/`: `POST /streams/:stream_id/retire` and `POST /streams/:stream_id/watch` (the
 * "Retire" and "Watch again" forms of "Streams silent"), then 303 back to the page that sent
 * them, where the stream is listed under its new heading; a refusal (role, token, cross-site, a
 * missing reason, already retired, not retired) is a page of its own with the API's code and
 * message, and nothing changed.
 */
export function retireFormRoutes(options: RetireFormOptions): Hono {
  const { retirements, auth, render } = options;
  const app = new Hono();

  async function act(c: Context, what: "retire" | "watch") {
    const back = backTo(c);
    try {
      const who = await auth.require(c, "operator");
      const streamId = streamIdParam(c.req.param("stream_id"));
      const form = await formBody(c);
      const typed = Object.fromEntries(
        ["reason", "by"].flatMap((k) => (typeof form[k] === "string" ? [[k, form[k]]] : [])),
      );
      const body = parseBody(retirementActionSchema, auth.named(typed, "by", who), "a retirement");
      const actor = auth.actor(who, body.by);
      if (what === "retire") {
        const listed = await options.lastListed?.(streamId).catch(() => undefined);
        await retirements.retire(streamId, body, actor, listed);
      } else if (!(await retirements.end(streamId, body, actor))) {
        throw new HttpError(404, "not_found", `stream ${streamId} is not retired.`);
      }
      return c.redirect(
        `${back.href}#${what === "retire" ? "retired-heading" : "silent-heading"}`,
        303,
      );
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      return render(
        c,
        <MessagePage
          title={what === "retire" ? "Not retired" : "Not watched again"}
          message={refusalSentence(error, "Nothing changed.")}
          code={error.code}
          back={back}
        />,
        error.status,
      );
    }
  }

  app.post("/streams/:stream_id/retire", (c) => act(c, "retire"));
  app.post("/streams/:stream_id/watch", (c) => act(c, "watch"));
  return app;
}
