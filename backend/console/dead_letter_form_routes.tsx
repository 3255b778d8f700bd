// The Health page's Re-send form for a dead letter (admin): sends it again as the API does, then back to Health.
import type { Context } from "hono";
import { Hono } from "hono";
import type { HtmlEscapedString } from "hono/utils/html";
import * as v from "valibot";
import { HttpError } from "../../contracts/error.ts";
import { formBody } from "../_parse_body.ts";
import type { Auth } from "../auth/auth.ts";
import { type DeadLetterResender, resendRequestSchema } from "../notify/dead_letter_resend.ts";
import { type FieldLabels, filledField, issueRefusal, refusalSentence } from "./form_error.tsx";
import { MessagePage } from "./incident_page.tsx";

export interface DeadLetterFormOptions {
  resender: Pick<DeadLetterResender, "resend">;
  /** Who may act: re-sending needs the admin role (under `AUTH_MODE=none`, the console token). */
  auth: Auth;
  /** Renders a page with the console's headers (routes.tsx's `page`). */
  render: (
    c: Context,
    element: HtmlEscapedString | Promise<HtmlEscapedString>,
    status?: number,
  ) => Promise<Response>;
}

/** The form's labels, naming a refused field as the page does. */
const LABELS: FieldLabels = { reason: "Why", by: "Your name" };

/**
 * Mounted at `/`: `POST /notifications/:message_id/retry`, then 303 to
 * `/status?resent=<message_id>`, which says so; a refusal (role, token, cross-site, not a dead
 * letter any more) is a page of its own with the reason, and nothing changed.
 */
export function deadLetterFormRoutes(options: DeadLetterFormOptions): Hono {
  const { resender, auth, render } = options;
  const app = new Hono();
  app.post("/notifications/:message_id/retry", async function resendForm(c) {
    try {
      const who = await auth.require(c, "admin");
      const form = await formBody(c);
      const body = v.safeParse(
        resendRequestSchema,
        auth.named({ reason: filledField(form, "reason"), by: filledField(form, "by") }, "by", who),
      );
      if (!body.success) throw issueRefusal(body.issues[0], LABELS);
      const id = c.req.param("message_id");
      await resender.resend(id, body.output, auth.actor(who, body.output.by));
      return c.redirect(`/status?${new URLSearchParams({ resent: id })}`, 303);
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      return render(
        c,
        <MessagePage
          title="Not re-sent"
          message={refusalSentence(error, "Nothing changed.")}
          code={error.code}
          back={{ href: "/status", label: "Back to Health" }}
        />,
        error.status,
      );
    }
  });
  return app;
}
