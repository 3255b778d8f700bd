// The console's Silences page and its forms: create a silence (times in a chosen zone) and expire one.
import type { Context } from "hono";
import { Hono } from "hono";
import type { HtmlEscapedString } from "hono/utils/html";
import { HttpError } from "../../contracts/error.ts";
import { isTimeZone } from "../../contracts/silence.ts";
import { zonedTimeToUtc } from "../../contracts/silence_match.ts";
import { formBody, parseBody } from "../_parse_body.ts";
import type { Auth } from "../auth/auth.ts";
import { silenceIdParam } from "../silences/routes.ts";
import type { SilenceRepository } from "../silences/silence_repository.ts";
import { expireSilenceSchema } from "../silences/silence_schemas.ts";
import { type FieldLabels, refusalFor } from "./form_error.tsx";
import { MessagePage, NotRecordedPage } from "./incident_page.tsx";
import {
  CREATE_LABELS,
  EXPIRE_LABELS,
  type ExpireTaken,
  type SilenceDone,
  type SilenceFormValues,
  SilencesPage,
} from "./silences_page.tsx";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface SilenceConsoleOptions {
  silences: Pick<SilenceRepository, "create" | "get" | "list" | "expire">;
  now: () => number;
  /** Who may act: the forms need the operator role. */
  auth: Auth;
  /** `AUTH_MODE=none` only: the shared token acting needs. */
  consoleToken?: string;
  /** Renders a page with the console's headers (routes.tsx's `page`). */
  render: (
    c: Context,
    element: HtmlEscapedString | Promise<HtmlEscapedString>,
    status?: number,
  ) => Promise<Response>;
}

const refuse = (field: string, message: string) =>
  new HttpError(400, "invalid_request", `'${field}' must be ${message}`);

/** A local "YYYY-MM-DD HH:MM" of the form in zone `tz` as an ISO instant; empty stays absent. */
function instant(local: string | undefined, tz: string, field: string): string | undefined {
  const text = local?.trim().replace(/^(\S+)\s+/, "$1T");
  if (!text) return undefined;
  try {
    const at = zonedTimeToUtc(text, tz);
    if (Number.isNaN(at.getTime())) throw new RangeError("not a time");
    return at.toISOString();
  } catch {
    throw refuse(field, "a date and time, YYYY-MM-DD HH:MM");
  }
}

/**
 * The create form as the API's body: sensor globs one per line (as typed), times read in the form's zone,
 * a recurrence when any of its fields is filled in (the API then says what is missing).
 */
export function silenceFromForm(form: SilenceFormValues): unknown {
  const one = (key: string) => {
    const x = form[key];
    return typeof x === "string" ? x : undefined;
  };
  const tz = one("tz")?.trim() || "UTC";
  if (!isTimeZone(tz)) throw refuse("tz", "an IANA time zone, e.g. Europe/Berlin");
  const days = [form.days ?? []].flat().filter((d) => typeof d === "string");
  const from = one("from")?.trim() || undefined;
  const to = one("to")?.trim() || undefined;
  // Each line as typed: a sensor's name may begin or end with a space (a CSV header's), and a
  // trimmed glob would never match it. Blank lines are dropped.
  const sensors = (one("sensors") ?? "").split(/\r?\n/).filter((s) => s.trim() !== "");
  return {
    matchers: { stream: (one("stream") ?? "").trim(), sensors },
    starts_at: instant(one("starts"), tz, "starts_at"),
    ends_at: instant(one("ends"), tz, "ends_at"),
    recurrence: days.length > 0 || from || to ? { days, from, to, tz } : undefined,
    reason: one("reason"),
    created_by: one("created_by"),
    confirm_all: one("confirm_all") === "true" ? true : undefined,
  };
}

/** A form's outcome the page after it confirms: `?created=<id>` or `?expired=<id>`. */
const DONE_MARKS = ["created", "expired"] as const;

/**
 * Mounted at `/`: `GET /silences?created=&expired=` (the page; the marks name a silence a form
 * just created or expired, to confirm it), `POST /silences` (create form),
 * `POST /silences/:id/expire` (expire form). Both forms need the console token where it is set,
 * as acknowledging does; a refusal re-renders the page with the message beside the form and
 * what was typed in it.
 */
export function silenceConsoleRoutes(options: SilenceConsoleOptions): Hono {
  const { silences, now, auth, consoleToken, render } = options;
  const app = new Hono();

  async function silencesPage(
    c: Context,
    refused?: {
      status: number;
      /** Absent with `expireTaken`, which says it in its own words. */
      message?: string;
      /** The API's key of the field the message is about, marked invalid in the form. */
      field?: string;
      values?: SilenceFormValues;
      /** An expiry's refusal: the silence's row shows it, with what was typed. */
      expiring?: { silenceId: string; values: Record<string, string> };
      /** An expiry not recorded: this silence was expired first, by someone else. */
      expireTaken?: ExpireTaken;
    },
    done?: SilenceDone,
  ) {
    const [active, pending, expired] = await Promise.all([
      silences.list({ state: "active", limit: 200 }),
      silences.list({ state: "pending", limit: 200 }),
      silences.list({ state: "expired", limit: 50 }),
    ]);
    return render(
      c,
      <SilencesPage
        active={active.silences}
        pending={pending.silences}
        expired={expired.silences}
        now={now()}
        tokenRequired={auth.mode === "none" && consoleToken !== undefined}
        error={refused?.expiring ? undefined : refused?.message}
        errorField={refused?.expiring ? undefined : refused?.field}
        values={refused?.values}
        expireRefused={
          refused?.expiring
            ? { ...refused.expiring, message: refused.message ?? "", field: refused.field }
            : undefined
        }
        expireTaken={refused?.expireTaken}
        done={done}
      />,
      refused?.status ?? 200,
    );
  }

  // The database did not answer (503): the silences cannot be listed either, so a page of its
  // own says nothing was recorded, with what was typed.
  function notRecorded(
    c: Context,
    error: HttpError,
    values: Record<string, string | string[] | undefined>,
  ) {
    const typed = Object.fromEntries(
      Object.entries(values).map(([k, v]) => [k, Array.isArray(v) ? v.join(", ") : v]),
    );
    return render(
      c,
      <NotRecordedPage
        message={error.message}
        typed={typed}
        back={{ href: "/silences", label: "Back to Silences" }}
      />,
      503,
    );
  }

  // A form's refusal (4xx) is shown on the page, in its labels' words; anything else is the
  // app's error.
  function refusal(
    error: unknown,
    labels: FieldLabels,
  ): { status: number; message: string; field?: string } {
    if (!(error instanceof HttpError) || error.status >= 500) throw error;
    const said = refusalFor(error, labels);
    // A checkbox is ticked, not "true".
    const message =
      said.field === "confirm_all"
        ? said.message.replace(" must be true", " must be ticked")
        : said.message;
    return { status: error.status, ...said, message };
  }

  app.get("/silences", async function showSilences(c) {
    // The form just sent, confirmed where the focus starts (as the Incident page's forms are).
    for (const what of DONE_MARKS) {
      const id = c.req.query(what);
      if (id === undefined || !UUID.test(id)) continue;
      const silence = await silences.get(id.toLowerCase());
      if (silence) return silencesPage(c, undefined, { what, silence });
    }
    return silencesPage(c);
  });

  app.post("/silences", async function createSilenceForm(c) {
    const values = (await formBody(c, { all: true })) as SilenceFormValues;
    try {
      const who = await auth.require(c, "operator");
      const body = auth.named(silenceFromForm(values), "created_by", who) as {
        created_by?: string;
      };
      const created = await silences.create(body, auth.actor(who, body.created_by));
      return c.redirect(`/silences?created=${created.silence_id}`, 303);
    } catch (error) {
      if (error instanceof HttpError && error.status >= 500) {
        return notRecorded(c, error, values as Record<string, string | string[] | undefined>);
      }
      return silencesPage(c, { ...refusal(error, CREATE_LABELS), values });
    }
  });

  app.post("/silences/:id/expire", async function expireSilenceForm(c) {
    let id: string;
    try {
      id = silenceIdParam(c.req.param("id"));
    } catch (error) {
      return render(
        c,
        <MessagePage title="Not a silence id" message={(error as Error).message} />,
        400,
      );
    }
    const form = await formBody(c);
    // Only text fields: a file upload in their place counts as missing.
    const typed: Record<string, string> = Object.fromEntries(
      ["by", "reason"].flatMap((k) => (typeof form[k] === "string" ? [[k, form[k]]] : [])),
    );
    try {
      const who = await auth.require(c, "operator");
      const by = parseBody(expireSilenceSchema, auth.named(typed, "by", who), "a silence");
      const result = await silences.expire(id, by, auth.actor(who, by.by));
      if (!result) throw new HttpError(404, "not_found", `There is no silence ${id}.`);
      const first = result.silence;
      // Someone expired it first: nothing of this form was recorded, so the page says whose
      // expiry stands and keeps what was typed (as the acknowledgement's "first wins" does). The
      // same form sent again (a double click) is the one recorded.
      if (
        !result.changed &&
        first.expired_at &&
        (first.expired_by !== by.by || (first.expired_reason ?? "") !== (by.reason || ""))
      ) {
        const expireTaken = {
          silenceId: id,
          by: first.expired_by ?? "",
          at: first.expired_at,
          values: typed,
        };
        return silencesPage(c, { status: 409, expireTaken });
      }
      return c.redirect(`/silences?expired=${id}`, 303);
    } catch (error) {
      if (error instanceof HttpError && error.status >= 500) return notRecorded(c, error, typed);
      // Shown in the silence's row with what was typed, as the Incident page's forms do.
      return silencesPage(c, {
        ...refusal(error, EXPIRE_LABELS),
        expiring: { silenceId: id, values: typed },
      });
    }
  });

  return app;
}
