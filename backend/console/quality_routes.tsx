// The console's Quality page and its "mute this sensor" form, which creates a silence.
import type { Context } from "hono";
import { Hono } from "hono";
import type { HtmlEscapedString } from "hono/utils/html";
import * as v from "valibot";
import { HttpError } from "../../contracts/error.ts";
import { STREAM_ID_PATTERN } from "../../contracts/frame.ts";
import type { Silence } from "../../contracts/silence.ts";
import { compileGlob } from "../../contracts/silence_match.ts";
import { storableText } from "../../contracts/storable.ts";
import { formBody } from "../_parse_body.ts";
import { parseQuery } from "../alerts/_query_params.ts";
import type { Auth } from "../auth/auth.ts";
import type { QualityRepository } from "../incidents/quality_repository.ts";
import { MAX_WEEKS, qualityQuerySchema } from "../incidents/quality_routes.ts";
import type { SilenceRepository } from "../silences/silence_repository.ts";
import { type FieldLabels, refusalFor } from "./form_error.tsx";
import { MessagePage, NotRecordedPage } from "./incident_page.tsx";
import {
  literalGlob,
  MUTE_DURATIONS,
  MUTE_MAX_NAMES,
  type MuteConfirmation,
  type MuteRefusal,
  QualityPage,
  unsilenceable,
} from "./quality_page.tsx";

export interface QualityConsoleOptions {
  quality: QualityRepository;
  /** Creates silences as `POST /api/v1/silences` does (same validation), and reads one back. */
  silences: Pick<SilenceRepository, "create" | "get" | "list">;
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

export { literalGlob };

const text = (what: string, max: number) =>
  v.pipe(
    v.string(what),
    v.trim(),
    v.minLength(1, `${what} of 1..${max} characters`),
    v.maxLength(max, `${what} of 1..${max} characters`),
  );

const muteFormSchema = v.object({
  stream: v.pipe(v.string("a stream id"), v.regex(STREAM_ID_PATTERN, "a stream id")),
  // Every name the sensor had in the report's range (a renamed sensor has several, an unnamed
  // one `feature_<idx>`), one `sensor` field each: a silence on only one of them leaves the
  // incidents under the others notified. Exactly as the alerts named it, spaces included: the
  // silence matches names as they are, so a trimmed " TI-101 " would make one that never matches.
  sensor: v.pipe(
    v.array(
      v.pipe(
        v.string("a sensor name"),
        v.minLength(1, "a sensor name of 1..500 characters"),
        v.maxLength(500, "a sensor name of 1..500 characters"),
        storableText,
        // The page sends only names a silence holds; any other would be refused by the silence.
        v.check(
          (name) => unsilenceable(name) === undefined,
          "a sensor name a silence holds (no control characters, at most 500 characters with `*`, `?` and `\\` escaped)",
        ),
      ),
      "a sensor name",
    ),
    v.minLength(1, "a sensor name of 1..500 characters"),
    v.maxLength(MUTE_MAX_NAMES, `at most ${MUTE_MAX_NAMES} sensor names`),
    v.transform((names) => [...new Set(names)]),
  ),
  duration: v.picklist(
    Object.keys(MUTE_DURATIONS),
    `one of ${Object.values(MUTE_DURATIONS)
      .map((d) => d.label)
      .join(", ")}`,
  ),
  reason: text("a reason", 500),
  by: text("a name", 200),
});

const MUTE_FIELDS = Object.keys(muteFormSchema.entries);

/**
 * The mute form's labels by the keys a refusal names: its own, and the silence's it creates
 * (`created_by` is its "Your name").
 */
const MUTE_LABELS: FieldLabels = {
  duration: "For",
  reason: "Reason",
  by: "Your name",
  created_by: "Your name",
  stream: "Stream",
  sensor: "Sensor",
};

/** The mute form's own key for a key the silence's validation names. */
const MUTE_FIELD_OF: Record<string, string> = { created_by: "by" };

const UUID = /^[\da-f]{8}(?:-[\da-f]{4}){3}-[\da-f]{12}$/i;

/**
 * The fields of a parsed form given once, as text: a file upload in their place, or a field
 * given more than once, counts as missing.
 */
function strings(form: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(form).filter((e): e is [string, string] => typeof e[1] === "string"),
  );
}

/** Every text value of a field that a form may give several times (file uploads left out). */
function texts(value: unknown): string[] {
  const all = Array.isArray(value) ? value : value === undefined ? [] : [value];
  return all.filter((x): x is string => typeof x === "string");
}

/**
 * Mounted at `/`: `GET /quality?weeks=&stream_id=&silence=` (the page; `silence` names one just
 * created, to confirm it) and `POST /quality/mute` (form: stream, sensor once per name, duration,
 * reason, by).
 */
export function qualityConsoleRoutes(options: QualityConsoleOptions): Hono {
  const { quality, silences, now, auth, consoleToken, render } = options;
  const app = new Hono();

  /**
   * Which noisy rows an active silence already mutes: a function of a row's stream and sensor
   * names giving the latest silence that covers the stream and every one of the names, among
   * those with a single time span (a weekly recurrence mutes only some hours, so its rows keep
   * the form).
   */
  async function activeMutes() {
    const { silences: active } = await silences.list({ state: "active", limit: 500 });
    const compiled = active
      .filter((s) => s.recurrence === null)
      .map((s) => ({
        silence: s,
        stream: compileGlob(s.matchers.stream),
        sensors: s.matchers.sensors.map(compileGlob),
      }));
    return function mutedBy(stream: string, names: string[]): Silence | undefined {
      return compiled.find(
        (m) =>
          m.stream.test(stream) &&
          (m.sensors.length === 0 || names.every((n) => m.sensors.some((g) => g.test(n)))),
      )?.silence;
    };
  }

  async function qualityPage(
    c: Context,
    query: Record<string, string>,
    extra: { refused?: MuteRefusal; muted?: MuteConfirmation; status?: number } = {},
  ) {
    let q: v.InferOutput<typeof qualityQuerySchema>;
    let streamError: { message: string; typed: string } | undefined;
    try {
      q = parseQuery(qualityQuerySchema, query);
    } catch (error) {
      // Only the Stream filter is off: the page again, the message beside that field.
      const { stream_id: typed, ...rest } = query;
      const without = v.safeParse(qualityQuerySchema, rest);
      if (typed === undefined || !without.success) {
        return render(
          c,
          <MessagePage title="Not a quality report" message={(error as Error).message} />,
          400,
        );
      }
      q = without.output;
      streamError = {
        message: refusalFor(error as HttpError, { stream_id: "Stream" }).message,
        typed,
      };
    }
    const [report, mutedBy] = await Promise.all([
      quality.report({
        weeks: q.weeks,
        streamId: q.stream_id,
        sensors: q.sensors,
        now: new Date(now()),
      }),
      activeMutes(),
    ]);
    return render(
      c,
      <QualityPage
        report={report}
        refused={extra.refused}
        muted={extra.muted}
        tokenRequired={auth.mode === "none" && consoleToken !== undefined}
        sensors={q.sensors}
        mutedBy={mutedBy}
        streamError={streamError}
      />,
      extra.status ?? (streamError ? 400 : undefined),
    );
  }

  app.get("/quality", async function showQuality(c) {
    const { silence: silenceId, ...query } = c.req.query();
    let muted: MuteConfirmation | undefined;
    if (silenceId !== undefined && UUID.test(silenceId)) {
      const s = await silences.get(silenceId.toLowerCase());
      if (s) {
        muted = {
          silenceId: s.silence_id,
          stream: s.matchers.stream,
          sensors: s.matchers.sensors,
          endsAt: s.ends_at,
          reason: s.reason,
          by: s.created_by,
        };
      }
    }
    return qualityPage(c, query, { muted });
  });

  app.post("/quality/mute", async function muteSensor(c) {
    const body = await formBody(c, { all: true });
    const form = strings(body);
    const names = texts(body.sensor);
    const weeks = /^\d{1,3}$/.test(form.weeks ?? "") && Number(form.weeks) <= MAX_WEEKS;
    // The page it came from: its period, stream filter and table length.
    const back: Record<string, string> = weeks ? { weeks: form.weeks } : {};
    if (form.stream_id && STREAM_ID_PATTERN.test(form.stream_id)) back.stream_id = form.stream_id;
    const n = Number(form.sensors);
    if (/^\d{1,3}$/.test(form.sensors ?? "") && n >= 1 && n <= 100) back.sensors = form.sensors;
    try {
      const who = await auth.require(c, "operator");
      // A missing field reads as blank, so the message says what it must be.
      const fields = auth.named(
        {
          ...Object.fromEntries(MUTE_FIELDS.map((k) => [k, form[k] ?? ""])),
          sensor: names,
        },
        "by",
        who,
      );
      const parsed = v.safeParse(muteFormSchema, fields);
      if (!parsed.success) {
        const issue = parsed.issues[0];
        throw new HttpError(
          400,
          "invalid_request",
          `'${v.getDotPath(issue)}' must be ${issue.message}`,
        );
      }
      const m = parsed.output;
      const start = now();
      const silence = await silences.create(
        {
          matchers: { stream: m.stream, sensors: m.sensor.map(literalGlob) },
          starts_at: new Date(start).toISOString(),
          ends_at: new Date(start + MUTE_DURATIONS[m.duration].ms).toISOString(),
          reason: m.reason,
          created_by: m.by,
        },
        auth.actor(who, m.by),
      );
      const to = new URLSearchParams({ ...back, silence: silence.silence_id });
      return c.redirect(`/quality?${to}`, 303);
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      if (error.status >= 500) {
        // The report cannot be read either: a page of its own, with what was sent.
        return render(
          c,
          <NotRecordedPage
            message={error.message}
            typed={Object.fromEntries(
              MUTE_FIELDS.map((k) => [k, k === "sensor" ? names.join(", ") : form[k]]),
            )}
            back={{ href: `/quality?${new URLSearchParams(back)}`, label: "Back to Quality" }}
          />,
          503,
        );
      }
      // Shown in the row it came from, with what was typed (as the Incident page's forms do).
      const said = refusalFor(error, MUTE_LABELS);
      const refused: MuteRefusal = {
        stream: form.stream ?? "",
        sensors: names,
        message: said.message,
        field: said.field === undefined ? undefined : (MUTE_FIELD_OF[said.field] ?? said.field),
        values: Object.fromEntries(["duration", "reason", "by"].map((k) => [k, form[k] ?? ""])),
      };
      return qualityPage(c, back, { refused, status: error.status });
    }
  });

  return app;
}
