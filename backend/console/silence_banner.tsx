// The banner every console page shows while silences hold: which streams and sensors, until when, and those ending soon.
import type { Context, MiddlewareHandler } from "hono";
import { createContext, useContext } from "hono/jsx";
import type { HtmlEscapedString } from "hono/utils/html";
import type { Silence } from "../../contracts/silence.ts";
import { compileSilence, holdsUntil, silenceHolds } from "../../contracts/silence_match.ts";
import { age, utc } from "./format.ts";

/** An active silence ending within this is listed as a reminder ("ends in 25 min"). */
export const ENDING_SOON_MS = 2 * 3_600_000;

/** Silences named in the banner at most: those ending soonest, then a few others; the rest counted. */
export const BANNER_ENDING_SOON_NAMED = 5;
export const BANNER_OTHERS_NAMED = 3;

/** What the banner is built from (the repository's `activeByEnd`): bounded however many are active. */
export interface ActiveSilencesByEnd {
  /** The active silences ending first, soonest first. */
  first: Silence[];
  /** How many are active. */
  active: number;
  /** How many active ones end within {@link ENDING_SOON_MS} (the repository's `endingWithinMs`). */
  ending_soon: number;
  /** Every active recurring silence: whether one holds now depends on its windows. */
  recurring: Silence[];
}

/** What the banner shows: how many silences hold now and end soon, and the few it names. */
export interface SilenceBannerData {
  now: number;
  /** How many silences hold now. */
  holding: number;
  /** How many the banner is about: those holding now, and those ending soon between windows. */
  total: number;
  /** How many of those end within {@link ENDING_SOON_MS}. */
  endingSoon: number;
  /** Those named, ending soonest first, then a few others. */
  named: { silence: Silence; holding: boolean; endingSoon: boolean }[];
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

/**
 * Counts the silences holding at `now` and ending soon, and picks the ones to name: those ending
 * soon (ending soonest first), then a few holding ones.
 */
export function bannerData(read: ActiveSilencesByEnd, now: number): SilenceBannerData {
  const holds = (s: Silence) => silenceHolds(compileSilence(s), now);
  const soon = (s: Silence) => silenceEnd(s) - now <= ENDING_SOON_MS;
  // Every active silence without windows holds; a recurring one only inside a window.
  const between = read.recurring.filter((s) => !holds(s));
  const holding = read.active - between.length;
  const candidates = read.first
    .map((s) => ({ silence: s, holding: holds(s), endingSoon: soon(s) }))
    .filter((s) => s.holding || s.endingSoon);
  const endingSoonBetween = between.filter(soon).length;
  return {
    now,
    holding,
    total: holding + endingSoonBetween,
    endingSoon: read.ending_soon,
    named: [
      ...candidates.filter((s) => s.endingSoon).slice(0, BANNER_ENDING_SOON_NAMED),
      ...candidates.filter((s) => !s.endingSoon).slice(0, BANNER_OTHERS_NAMED),
    ],
  };
}

/**
 * Middleware for the console's routes: leaves a loader on the request that `withSilenceBanner`
 * calls when (and only when) a page is rendered.
 */
export function silenceBannerLoader(options: {
  /** The active silences ending first, and the counts (the repository's `activeByEnd`). */
  activeSilences: (q: { limit: number; endingWithinMs: number }) => Promise<ActiveSilencesByEnd>;
  now: () => number;
}): MiddlewareHandler {
  return async function provideSilenceBanner(c, next) {
    c.set("silenceBanner", async () =>
      bannerData(
        await options.activeSilences({
          limit: BANNER_ENDING_SOON_NAMED + BANNER_OTHERS_NAMED,
          endingWithinMs: ENDING_SOON_MS,
        }),
        options.now(),
      ),
    );
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

/** A reason up to this many characters is shown whole in the banner; the Silences page has all. */
const REASON_SHOWN = 120;

function shortReason(reason: string): string {
  const chars = [...reason];
  return chars.length > REASON_SHOWN ? `${chars.slice(0, REASON_SHOWN - 1).join("")}…` : reason;
}

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

/**
 * The banner itself: nothing when no silence holds and none ends soon. However many hold, it
 * stays a few lines (each page's h1 and first incidents on the first screen): how many hold and
 * end soon, those ending soonest and a few others by name, and how many more on the Silences page.
 */
export function SilenceBanner() {
  const data = useContext(BannerContext);
  if (!data || data.total === 0) return null;
  const nowIso = new Date(data.now).toISOString();
  const more = Math.max(0, data.total - data.named.length);
  return (
    // No heading: the banner comes before each page's h1, which must stay the first heading.
    <aside class="silence-banner" aria-label="Maintenance silences">
      <p class="silence-count">
        <strong>
          {data.holding === 0
            ? "No silence holds now"
            : data.holding === 1
              ? "1 silence holds now"
              : `${data.holding} silences hold now`}
        </strong>
        {data.endingSoon > 0
          ? ` (${plural(data.endingSoon, "ends", "end")} within ${ENDING_SOON_MS / 3_600_000} h)`
          : ""}
      </p>
      <ul>
        {data.named.map(({ silence: s, holding, endingSoon }) => {
          const ends = endingSoon ? age(nowIso, silenceEnd(s)) : null;
          if (!holding) {
            return (
              <li data-silence={s.silence_id} data-holding="false">
                Ends soon: <SilenceScope silence={s} />{" "}
                <strong class="ending-soon">in {ends}</strong>
                {" · "}
                <bdi>{shortReason(s.reason)}</bdi> (<bdi>{s.created_by}</bdi>)
              </li>
            );
          }
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
              <bdi>{shortReason(s.reason)}</bdi> (<bdi>{s.created_by}</bdi>)
              {ends ? <strong class="ending-soon"> ends in {ends}</strong> : null}
            </li>
          );
        })}
      </ul>
      <p>
        <a href="/silences">{more > 0 ? `and ${more} more: manage silences` : "Manage silences"}</a>
      </p>
    </aside>
  );
}
