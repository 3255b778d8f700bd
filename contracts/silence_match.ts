// What a silence covers: stream and sensor globs, its time span and weekly recurrence in a time zone (Intl).
import { minuteOfDay, SILENCE_DAYS, type Silence, type SilenceDay } from "./silence.ts";

/** A compiled glob: `test` is true when it matches the whole text. */
export interface Glob {
  test(text: string): boolean;
}

/** A `?` (exactly one character) and a `*` (any run, also none) among a glob's literal characters. */
const ONE = 0;
const RUN = 1;
type GlobToken = string | typeof ONE | typeof RUN;

/** Characters of `text` by code point (a `?` is one character, as a person counts them). */
const charsOf = (text: string): ArrayLike<string> =>
  /[\uD800-\uDFFF]/.test(text) ? Array.from(text) : text;

/**
 * Compiles a glob: `*` any run of characters (also none), `?` exactly one, `\` makes the next
 * character literal; everything else is itself. Matched by walking text and glob together and
 * going back only to the last `*` (at most glob length × text length steps): a regular expression
 * of `.*` runs backtracks exponentially, and a 19-character silence glob such as `*?*?*?*?*?X`
 * held the backend's event loop for seconds on one sensor name.
 *
 * @example compileGlob("line-?.*").test("line-1.boiler") // true
 */
export function compileGlob(glob: string): Glob {
  const tokens: GlobToken[] = [];
  const chars = Array.from(glob);
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i];
    if (c === "\\" && i + 1 < chars.length) tokens.push(chars[++i]);
    else if (c === "*") {
      // A run of stars is one star.
      if (tokens.at(-1) !== RUN) tokens.push(RUN);
    } else if (c === "?") tokens.push(ONE);
    else tokens.push(c);
  }
  if (tokens.every((t) => typeof t === "string")) {
    const whole = tokens.join("");
    return { test: (text) => text === whole };
  }
  return { test: (text) => globMatches(tokens, charsOf(text)) };
}

function globMatches(p: GlobToken[], t: ArrayLike<string>): boolean {
  let pi = 0;
  let ti = 0;
  // The last `*` met, and where in the text its run ends for now.
  let star = -1;
  let mark = 0;
  while (ti < t.length) {
    const token = p[pi];
    if (pi < p.length && (token === ONE || token === t[ti])) {
      pi++;
      ti++;
    } else if (pi < p.length && token === RUN) {
      star = pi++;
      mark = ti;
    } else if (star >= 0) {
      // The last `*` takes one more character; the glob after it is tried again from there.
      pi = star + 1;
      ti = ++mark;
    } else {
      return false;
    }
  }
  while (p[pi] === RUN) pi++;
  return pi === p.length;
}

/** Whether a glob matches every name it could meet: wildcards only, at least one `*`. */
export function globMatchesEverything(glob: string): boolean {
  return /^[*?]*\*[*?]*$/.test(glob);
}

/** Whether the matchers cover every stream and every sensor (needs `confirm_all` to create). */
export function matchersCoverEverything(m: { stream: string; sensors: string[] }): boolean {
  return (
    globMatchesEverything(m.stream) &&
    (m.sensors.length === 0 || m.sensors.some(globMatchesEverything))
  );
}

/** A local wall clock reading: day of the week and minute of the day in a time zone. */
export interface WallClock {
  day: SilenceDay;
  minute: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(tz: string): Intl.DateTimeFormat {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone: tz,
      hourCycle: "h23",
      weekday: "short",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    // Few zones are ever in use; the bound only stops a stream of odd names growing it.
    if (formatters.size > 256) formatters.clear();
    formatters.set(tz, f);
  }
  return f;
}

function localParts(atMs: number, tz: string): Record<string, string> {
  const parts: Record<string, string> = {};
  for (const p of formatter(tz).formatToParts(atMs)) parts[p.type] = p.value;
  return parts;
}

/** The day and minute the clocks in `tz` show at `atMs` (DST included, from the runtime's Intl data). */
export function wallClock(atMs: number, tz: string): WallClock {
  const p = localParts(atMs, tz);
  return {
    day: p.weekday.toLowerCase().slice(0, 3) as SilenceDay,
    minute: Number(p.hour) * 60 + Number(p.minute),
  };
}

/** How far `tz` is ahead of UTC at `atMs`, in milliseconds. */
function offsetMs(atMs: number, tz: string): number {
  const p = localParts(atMs, tz);
  const asUtc = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second);
  return asUtc - (atMs - (((atMs % 1000) + 1000) % 1000));
}

/**
 * The instant at which the clocks in `tz` show `local` ("YYYY-MM-DDTHH:MM[:SS]"). A time that
 * does not exist (skipped when clocks go forward) maps to the same distance past the jump; a time
 * that exists twice (clocks going back) to its first occurrence.
 *
 * @example zonedTimeToUtc("2026-03-29T03:30", "Europe/Berlin") // 2026-03-29T01:30:00.000Z
 */
export function zonedTimeToUtc(local: string, tz: string): Date {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(local);
  if (!m) throw new RangeError(`'local' must be YYYY-MM-DDTHH:MM, got ${JSON.stringify(local)}`);
  const wall = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] ?? 0));
  // Date.UTC rolls 2026-02-30 over into March: a date that does not exist is refused instead.
  if (new Date(wall).toISOString().slice(0, 19) !== `${local.slice(0, 16)}:${m[6] ?? "00"}`) {
    throw new RangeError(`'local' is not a date and time that exists: ${JSON.stringify(local)}`);
  }
  // The zone's offsets a day and a half either side: the instant is within 14 h of `wall` read
  // as UTC (offsets run from -12 h to +14 h), so a clock change near it lies between the two
  // (changes are months apart; a few hours either side missed it in zones 3 h or more from
  // UTC). Where both fit (clocks went back) the larger offset gives the earlier instant; where
  // neither does (clocks went forward) the offset from before the jump moves the time past it.
  const before = offsetMs(wall - 36 * 3_600_000, tz);
  const after = offsetMs(wall + 36 * 3_600_000, tz);
  for (const o of before >= after ? [before, after] : [after, before]) {
    if (offsetMs(wall - o, tz) === o) return new Date(wall - o);
  }
  return new Date(wall - before);
}

/** A silence prepared for repeated matching: compiled globs and milliseconds. */
export interface CompiledSilence {
  id: string;
  stream: Glob;
  /** Empty: every sensor. */
  sensors: Glob[];
  startMs: number;
  /** `ends_at`, or `expired_at` when that came first. */
  endMs: number;
  recurrence: { days: Set<SilenceDay>; from: number; to: number; tz: string } | null;
}

type SilenceInput = Pick<Silence, "silence_id" | "starts_at" | "ends_at" | "recurrence"> & {
  matchers: { stream: string; sensors: string[] };
  expired_at?: string | null;
};

/** Prepares a silence for {@link silenceHolds} and {@link silenceCovers}. */
export function compileSilence(s: SilenceInput): CompiledSilence {
  const ends = Date.parse(s.ends_at);
  const expired = s.expired_at ? Date.parse(s.expired_at) : Number.POSITIVE_INFINITY;
  const r = s.recurrence;
  return {
    id: s.silence_id,
    stream: compileGlob(s.matchers.stream),
    sensors: s.matchers.sensors.map(compileGlob),
    startMs: Date.parse(s.starts_at),
    endMs: Math.min(ends, expired),
    recurrence: r
      ? {
          days: new Set(r.days.filter((d) => SILENCE_DAYS.includes(d))),
          from: minuteOfDay(r.from),
          to: minuteOfDay(r.to),
          tz: r.tz,
        }
      : null,
  };
}

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;
const edgesMemo = new Map<string, readonly [number, number]>();

/**
 * Where a window edge at `wall` (a local date and time as milliseconds read as UTC) lies in `tz`:
 * the instant a window starting there begins and the one a window ending there ends. Most times
 * the zone shows once, and both are that instant. Where it shows `wall` twice (clocks
 * went back) a start takes the first reading; an end takes the last only when `wall` lies inside
 * the repeated interval after its first minute (the window runs into it, so it holds through it
 * without a hole) and the first when `wall` is where the repeat begins (a window ending there ends
 * before the repeat, as its wall-clock range says). A time skipped when clocks went forward maps,
 * for both, to the jump itself, so that a window edge in the gap moves to where the clocks resume
 * (a window wholly inside the gap vanishes).
 */
function edgeInstants(wall: number, tz: string): readonly [start: number, end: number] {
  const key = `${tz} ${wall}`;
  let hit = edgesMemo.get(key);
  if (hit) return hit;
  // As in zonedTimeToUtc: the offsets a day and a half either side bracket any change near it.
  const before = offsetMs(wall - 36 * 3_600_000, tz);
  const after = offsetMs(wall + 36 * 3_600_000, tz);
  const found = [...new Set([before, after])]
    .filter((o) => offsetMs(wall - o, tz) === o)
    .map((o) => wall - o)
    .sort((a, b) => a - b);
  if (found.length > 0) {
    const last = found[found.length - 1];
    // The last reading is the clock change itself when `wall` begins the repeated interval: the
    // second before it the zone still had the old offset (inside the interval it has the new one).
    hit = [found[0], offsetMs(last - 1000, tz) === wall - last ? last : found[0]];
  } else {
    // Skipped: the clocks jumped between wall - after (old offset) and wall - before (new one);
    // the jump is found to the second.
    let lo = wall - after;
    let hi = wall - before;
    while (hi - lo > 1000) {
      const mid = lo + Math.floor((hi - lo) / 2000) * 1000;
      if (offsetMs(mid, tz) === before) lo = mid;
      else hi = mid;
    }
    hit = [hi, hi];
  }
  // Windows repeat weekly in a few zones; the bound only stops the memo growing without end.
  if (edgesMemo.size > 4096) edgesMemo.clear();
  edgesMemo.set(key, hit);
  return hit;
}

/**
 * The end of the recurrence window that contains `atMs`, or null when none does. A window runs
 * from the first instant its zone shows `from` to the instant it shows `to` on a listed day, the
 * last of two when `to` lies inside the hour repeated when clocks go back (after its first
 * minute), so a window running into that hour holds through it without a hole, and the first when
 * `to` is where the repeat begins, so a window ending there does not take in the repeat; only the
 * local day of `atMs` and the day before can hold a window containing it. Throws for a zone the
 * runtime does not know.
 */
function windowEnd(r: NonNullable<CompiledSilence["recurrence"]>, atMs: number): number | null {
  const p = localParts(atMs, r.tz);
  const today = Date.UTC(+p.year, +p.month - 1, +p.day);
  for (const date of [today, today - DAY_MS]) {
    // getUTCDay counts from Sunday; SILENCE_DAYS from Monday.
    if (!r.days.has(SILENCE_DAYS[(new Date(date).getUTCDay() + 6) % 7])) continue;
    const start = edgeInstants(date + r.from * MINUTE_MS, r.tz)[0];
    const end = edgeInstants(date + r.to * MINUTE_MS, r.tz)[1];
    if (start <= atMs && atMs < end) return end;
  }
  return null;
}

/** Whether the silence holds at `atMs`: inside its span and, when it recurs, inside a window. */
export function silenceHolds(s: CompiledSilence, atMs: number): boolean {
  if (!(atMs >= s.startMs && atMs < s.endMs)) return false;
  const r = s.recurrence;
  if (!r) return true;
  try {
    return windowEnd(r, atMs) !== null;
  } catch {
    // A zone this runtime does not know: holding is the side that keeps data out of training.
    return true;
  }
}

/**
 * When the silence holding at `atMs` stops holding: its end, or for a recurring one the end of
 * the window it is in (see {@link windowEnd}), whichever comes first.
 * A silence not holding at `atMs` has already stopped: `atMs` itself.
 *
 * @example holdsUntil(compileSilence(weeklySat10to12Berlin), Date.parse("2026-12-05T09:30:00Z")) // 11:00Z
 */
export function holdsUntil(s: CompiledSilence, atMs: number): number {
  if (!silenceHolds(s, atMs)) return atMs;
  const r = s.recurrence;
  if (!r) return s.endMs;
  try {
    return Math.min(s.endMs, windowEnd(r, atMs) ?? atMs);
  } catch {
    return s.endMs;
  }
}

/**
 * Whether the silence covers `sensor` of `stream` at `atMs`. With no sensor it asks about the
 * whole stream, which only a silence without sensor globs covers.
 */
export function silenceCovers(
  s: CompiledSilence,
  stream: string,
  sensor: string | undefined,
  atMs: number,
): boolean {
  if (!inForce(s, stream, atMs)) return false;
  if (s.sensors.length === 0) return true;
  return sensor !== undefined && namesSensor(s, sensor);
}

/**
 * Whether the silence covers one or more of `sensors` of `stream` at `atMs` (a whole-stream one
 * covers any): `silenceCovers` for a list, with the window worked out once rather than per sensor
 * (a weekly window's is a time-zone conversion).
 */
export function silenceCoversAny(
  s: CompiledSilence,
  stream: string,
  sensors: readonly string[],
  atMs: number,
): boolean {
  if (!inForce(s, stream, atMs)) return false;
  if (s.sensors.length === 0) return true;
  return sensors.some((name) => namesSensor(s, name));
}

/** Whether the silence covers every one of `sensors` of `stream` at `atMs` (an incident's test). */
export function silenceCoversAll(
  s: CompiledSilence,
  stream: string,
  sensors: readonly string[],
  atMs: number,
): boolean {
  if (!inForce(s, stream, atMs)) return false;
  if (s.sensors.length === 0) return true;
  return sensors.length > 0 && sensors.every((name) => namesSensor(s, name));
}

/** Whether the silence is on `stream` and holds at `atMs` (a weekly window: one zone conversion). */
const inForce = (s: CompiledSilence, stream: string, atMs: number) =>
  s.stream.test(stream) && silenceHolds(s, atMs);

/** Whether one of the silence's sensor globs matches `name`. */
const namesSensor = (s: CompiledSilence, name: string) => s.sensors.some((g) => g.test(name));
