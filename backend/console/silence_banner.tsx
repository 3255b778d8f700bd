// The banner every console page shows while silences hold: which streams and sensors, until when, and those ending soon.
import type { Context, MiddlewareHandler } from "hono";
import { createContext, useContext } from "hono/jsx";
import type { HtmlEscapedString } from "hono/utils/html";
import type { Silence } from "../../contracts/silence.ts";
import { compileSilence, holdsUntil, silenceHolds } from "../../contracts/silence_match.ts";
import { age, utc } from "./format.ts";

/** An active silence ending within this is listed as a reminder ("ends in 25 min"). */
export const ENDING_SOON_MS = 2 * 3_600_000;

/** What the banner shows: silences holding now, and active ones whose end is near. */
export interface SilenceBannerData {
  now: number;
  holding: Silence[];
  endingSoon: Silence[];
}

const BannerContext = createContext<SilenceBannerData | null>(null);

declare module "hono" {
  interface ContextVariableMap {
    /** Reads what the silence banner shows; set by {@link silenceBannerLoader}. */
    silenceBanner?: () => Promise<SilenceBannerData>;
  }
}

/** When an active silence ends: its `ends_at`, or its expiry when that comes first. */
export function silenceEnd(s: Silence): number {
  const end = Date.parse(s.ends_at);
  return s.expired_at ? Math.min(end, Date.parse(s.expired_at)) : end;
}

/** Splits the active silences into those holding at `now` and those ending soon. */
export function bannerData(active: Silence[], now: number): SilenceBannerData {
  return {
    now,
    holding: active.filter((s) => silenceHolds(compileSilence(s), now)),
    endingSoon: active
      .filter((s) => silenceEnd(s) - now <= ENDING_SOON_MS)
      .sort((a, b) => silenceEnd(a) - silenceEnd(b)),
  };
}

/**
 * Middleware for the console's routes: leaves a loader on the request that `withSilenceBanner`
 * calls when (and only when) a page is rendered.
 */
export function silenceBannerLoader(options: {
  activeSilences: () => Promise<Silence[]>;
  now: () => number;
}): MiddlewareHandler {
  return async function provideSilenceBanner(c, next) {
    c.set("silenceBanner", async () => bannerData(await options.activeSilences(), options.now()));
    await next();
  };
}

/**
 * The page with the banner's data in reach of its layout. A failure to read the silences shows
 * the page without a banner rather than no page.
 */
export async function withSilenceBanner(
  c: Context,
  element: HtmlEscapedString | Promise<HtmlEscapedString>,
): Promise<HtmlEscapedString | Promise<HtmlEscapedString>> {
  const load = c.get("silenceBanner");
  const data = load ? await load().catch(() => null) : null;
  if (!data) return element;
  return (
    <BannerContext.Provider value={data}>
      {element as unknown as HtmlEscapedString}
    </BannerContext.Provider>
  ) as unknown as HtmlEscapedString;
}

/**
 * A silence's scope in a sentence: "streams line-1*, sensors pump*, TI_3". Each glob is isolated
 * (`<bdi>`): a right-to-left character in one cannot reorder the words and times beside it.
 */
export function SilenceScope(props: { silence: Silence }) {
  const m = props.silence.matchers;
  return (
    <>
      streams{" "}
      <code>
        <bdi>{m.stream}</bdi>
      </code>
      {m.sensors.length === 0 ? (
        ", every sensor"
      ) : (
        <>
          , sensors{" "}
          {m.sensors.map((g, i) => (
            <>
              {i > 0 ? ", " : ""}
              <code>
                <bdi>{g}</bdi>
              </code>
            </>
          ))}
        </>
      )}
    </>
  );
}

/** The banner itself: nothing when no silence holds and none ends soon. */
export function SilenceBanner() {
  const data = useContext(BannerContext);
  if (!data || (data.holding.length === 0 && data.endingSoon.length === 0)) return null;
  const soon = new Set(data.endingSoon.map((s) => s.silence_id));
  return (
    // No heading: the banner comes before each page's h1, which must stay the first heading.
    <aside class="silence-banner" aria-label="Maintenance silences">
      <ul>
        {data.holding.map((s) => {
          // A recurring silence holds until its current window ends, not until its last day.
          const until = new Date(holdsUntil(compileSilence(s), data.now)).toISOString();
          const r = s.recurrence;
          return (
            <li data-silence={s.silence_id} data-holding="true">
              Silenced now: <SilenceScope silence={s} /> until{" "}
              <time datetime={until}>{utc(until)}</time>
              {r
                ? ` (this window; it repeats ${r.days.join(", ")} ${r.from}–${r.to} ${r.tz} until ${utc(new Date(silenceEnd(s)).toISOString())})`
                : ""}
              {" · "}
              <bdi>{s.reason}</bdi> (<bdi>{s.created_by}</bdi>)
              {soon.has(s.silence_id) ? (
                <strong class="ending-soon">
                  {" "}
                  ends in {age(new Date(data.now).toISOString(), silenceEnd(s))}
                </strong>
              ) : null}
            </li>
          );
        })}
        {data.endingSoon
          .filter((s) => !data.holding.includes(s))
          .map((s) => (
            <li data-silence={s.silence_id} data-holding="false">
              Ends soon: <SilenceScope silence={s} />{" "}
              <strong class="ending-soon">
                in {age(new Date(data.now).toISOString(), silenceEnd(s))}
              </strong>
              {" · "}
              <bdi>{s.reason}</bdi> (<bdi>{s.created_by}</bdi>)
            </li>
          ))}
      </ul>
      <p>
        <a href="/silences">Manage silences</a>
      </p>
    </aside>
  );
}
