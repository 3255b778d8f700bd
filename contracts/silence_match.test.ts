import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as v from "valibot";
import { recurrenceSchema, silenceFeedSchema } from "./silence.ts";
import {
  compileGlob,
  compileSilence,
  globMatchesEverything,
  holdsUntil,
  matchersCoverEverything,
  silenceCovers,
  silenceCoversAll,
  silenceCoversAny,
  silenceHolds,
  wallClock,
  zonedTimeToUtc,
} from "./silence_match.ts";

const at = (iso: string) => Date.parse(iso);

function silence(o: {
  stream?: string;
  sensors?: string[];
  starts_at?: string;
  ends_at?: string;
  expired_at?: string | null;
  recurrence?: { days: ("mon" | "sat" | "sun")[]; from: string; to: string; tz: string } | null;
}) {
  return compileSilence({
    silence_id: "00000000-0000-4000-8000-000000000001",
    matchers: { stream: o.stream ?? "*", sensors: o.sensors ?? [] },
    starts_at: o.starts_at ?? "2026-03-01T00:00:00.000Z",
    ends_at: o.ends_at ?? "2026-11-30T00:00:00.000Z",
    expired_at: o.expired_at ?? null,
    recurrence: o.recurrence ?? null,
  });
}

describe("globs", () => {
  test("compileGlob matches * as any run, ? as one character, and the rest literally", () => {
    assert.ok(compileGlob("line-*").test("line-"));
    assert.ok(compileGlob("line-*").test("line-1.boiler"));
    assert.ok(!compileGlob("line-*").test("xline-1"));
    assert.ok(compileGlob("line-?").test("line-7"));
    assert.ok(!compileGlob("line-?").test("line-17"));
    assert.ok(compileGlob("a.b").test("a.b"));
    assert.ok(!compileGlob("a.b").test("axb"), "a dot is literal");
    assert.ok(compileGlob("temp[1](x)+").test("temp[1](x)+"));
    assert.ok(compileGlob("star\\*").test("star*"));
    assert.ok(!compileGlob("star\\*").test("starry"), "an escaped * is literal");
  });

  test("compileGlob agrees with the anchored regular expression it replaced, on globs and names drawn at random", () => {
    const literal = (c: string) => c.replace(/[\\^$.*+?()[\]{}|]/g, "\\$&");
    const reference = (glob: string) =>
      new RegExp(
        `^${Array.from(glob, (c) => (c === "*" ? ".*" : c === "?" ? "." : literal(c))).join("")}$`,
        "su",
      );
    // A small alphabet, so that globs and names meet often; a character outside the BMP and a
    // line break, which `?` and `*` take as one character each.
    const alphabet = ["a", "b", "-", ".", "\u{1F525}", "\n", "*", "?"];
    let seed = 7;
    const next = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed % n;
    };
    const draw = (length: number, letters: string[]) =>
      Array.from({ length }, () => letters[next(letters.length)]).join("");
    for (let i = 0; i < 5000; i++) {
      const glob = draw(next(8), alphabet);
      const name = draw(next(10), alphabet.slice(0, 6));
      assert.equal(
        compileGlob(glob).test(name),
        reference(glob).test(name),
        `${JSON.stringify(glob)} on ${JSON.stringify(name)}`,
      );
    }
  });

  test("compileGlob answers at once where a regular expression backtracks for minutes", () => {
    // `.*.` repeated made the backend's event loop stop for seconds per sensor name (a silence
    // glob of 19 characters); walking the glob and going back only to the last `*` is linear.
    const glob = `${"*?".repeat(12)}X`;
    const name = "PLANT1_AREA2_UNIT3_PUMP4_MOTOR_DE_BEARING_TEMP";
    assert.equal(compileGlob(glob).test(name), false);
    assert.equal(compileGlob(glob).test(`${name}X`), true);
    assert.equal(compileGlob("**a**").test("xxaxx"), true);
  });

  test("globMatchesEverything knows the wildcard-only globs", () => {
    for (const g of ["*", "**", "?*", "*?*"]) assert.ok(globMatchesEverything(g), g);
    for (const g of ["?", "line-*", "*-1", "\\*"]) assert.ok(!globMatchesEverything(g), g);
    assert.ok(matchersCoverEverything({ stream: "*", sensors: [] }));
    assert.ok(matchersCoverEverything({ stream: "*", sensors: ["feature_1", "*"] }));
    assert.ok(!matchersCoverEverything({ stream: "*", sensors: ["feature_*"] }));
    assert.ok(!matchersCoverEverything({ stream: "line-*", sensors: [] }));
  });
});

describe("recurrence schema", () => {
  const ok = { days: ["Mon", "sun"], from: "01:00", to: "04:00", tz: "Europe/Berlin" };
  const issue = (input: unknown) => {
    const r = v.safeParse(recurrenceSchema, input);
    return r.success ? undefined : `${v.getDotPath(r.issues[0])}: ${r.issues[0].message}`;
  };

  test("recurrenceSchema accepts days in any case, in week order, and 24:00 as an end", () => {
    const r = v.parse(recurrenceSchema, { ...ok, days: ["sun", "MON"], to: "24:00" });
    assert.deepEqual(r.days, ["mon", "sun"]);
    assert.equal(r.to, "24:00");
  });

  test("recurrenceSchema refuses a bad zone, an empty window, no days and odd times", () => {
    assert.match(issue({ ...ok, tz: "Mars/Olympus" }) ?? "", /^tz: an IANA time zone/);
    assert.match(issue({ ...ok, tz: "../etc/passwd" }) ?? "", /^tz:/);
    assert.match(issue({ ...ok, from: "04:00", to: "04:00" }) ?? "", /^to: after 'from'/);
    assert.match(issue({ ...ok, from: "22:00", to: "06:00" }) ?? "", /^to: after 'from'/);
    assert.match(issue({ ...ok, days: [] }) ?? "", /^days: at least one day/);
    assert.match(issue({ ...ok, days: ["mon", "mon"] }) ?? "", /^days: days listed once/);
    assert.match(issue({ ...ok, days: ["someday"] }) ?? "", /^days\.0: one of mon/);
    assert.match(issue({ ...ok, from: "24:00" }) ?? "", /^from: a time/);
    assert.match(issue({ ...ok, to: "4:00" }) ?? "", /^to: a time/);
    assert.match(issue({ ...ok, every: "week" }) ?? "", /^every:/);
  });

  test("the feed schema reads a zone the runtime does not know, and matching then holds", () => {
    const feed = v.parse(silenceFeedSchema, {
      as_of: "2026-03-01T00:00:00.000Z",
      silences: [
        {
          silence_id: "00000000-0000-4000-8000-000000000002",
          matchers: { stream: "a", sensors: [] },
          starts_at: "2026-03-01T00:00:00.000Z",
          ends_at: "2026-03-02T00:00:00.000Z",
          recurrence: { days: ["mon"], from: "01:00", to: "02:00", tz: "Nowhere/Atlantis" },
          reason: "r",
          created_by: "b",
          created_at: "2026-03-01T00:00:00.000Z",
          expired_at: null,
          expired_by: null,
          expired_reason: null,
          state: "active",
        },
      ],
    });
    const s = compileSilence(feed.silences[0]);
    assert.ok(silenceHolds(s, at("2026-03-01T12:00:00Z")));
  });
});

describe("time zones", () => {
  test("wallClock follows Berlin's clocks across both 2026 changes", () => {
    assert.deepEqual(wallClock(at("2026-03-29T00:30:00Z"), "Europe/Berlin"), {
      day: "sun",
      minute: 90,
    });
    assert.deepEqual(wallClock(at("2026-03-29T01:30:00Z"), "Europe/Berlin"), {
      day: "sun",
      minute: 210,
    });
    // 02:30 happens twice on 25 October: once in summer time, once in winter time.
    assert.deepEqual(wallClock(at("2026-10-25T00:30:00Z"), "Europe/Berlin").minute, 150);
    assert.deepEqual(wallClock(at("2026-10-25T01:30:00Z"), "Europe/Berlin").minute, 150);
  });

  test("zonedTimeToUtc maps local times, moves a skipped one past the jump, takes the first of two", () => {
    const utc = (local: string, tz = "Europe/Berlin") => zonedTimeToUtc(local, tz).toISOString();
    assert.equal(utc("2026-01-15T09:00"), "2026-01-15T08:00:00.000Z");
    assert.equal(utc("2026-07-15T09:00"), "2026-07-15T07:00:00.000Z");
    assert.equal(utc("2026-03-29T01:59"), "2026-03-29T00:59:00.000Z");
    assert.equal(utc("2026-03-29T02:30"), "2026-03-29T01:30:00.000Z", "skipped: 03:30 CEST");
    assert.equal(utc("2026-03-29T03:00"), "2026-03-29T01:00:00.000Z");
    assert.equal(utc("2026-10-25T02:30"), "2026-10-25T00:30:00.000Z", "twice: the first");
    assert.equal(utc("2026-10-25T03:00"), "2026-10-25T02:00:00.000Z");
    assert.equal(utc("2026-11-24T09:00", "UTC"), "2026-11-24T09:00:00.000Z");
    assert.equal(
      utc("2026-11-24T09:00", "America/New_York"),
      "2026-11-24T14:00:00.000Z",
      "a zone behind UTC",
    );
    assert.throws(() => zonedTimeToUtc("tomorrow", "UTC"), RangeError);
    assert.throws(() => zonedTimeToUtc("2026-02-30T10:00", "UTC"), RangeError);
    assert.throws(() => zonedTimeToUtc("2026-01-01T24:30", "UTC"), RangeError);
  });

  test("zonedTimeToUtc is right around every 2026 clock change in zones far from UTC", () => {
    const zones = [
      "America/New_York",
      "America/Los_Angeles",
      "Australia/Sydney",
      "Pacific/Auckland",
      "America/Santiago",
      "Europe/London",
      "Asia/Tehran",
    ];
    const pad = (n: number) => String(n).padStart(2, "0");
    const formats = new Map<string, Intl.DateTimeFormat>();
    const localOf = (ms: number, tz: string) => {
      let f = formats.get(tz);
      if (!f) {
        f = new Intl.DateTimeFormat("en-US", {
          timeZone: tz,
          hourCycle: "h23",
          year: "numeric",
          month: "2-digit",
          day: "2-digit",
          hour: "2-digit",
          minute: "2-digit",
        });
        formats.set(tz, f);
      }
      const p: Record<string, string> = {};
      for (const x of f.formatToParts(ms)) p[x.type] = x.value;
      return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}`;
    };
    const offsetAt = (ms: number, tz: string) => Date.parse(`${localOf(ms, tz)}Z`) - ms;
    let checked = 0;
    for (const tz of zones) {
      // Each change of 2026 (found 6 hours at a time, then to the hour), and every quarter
      // hour of local time within two days either side of it: a time that exists maps back to
      // itself, the first of the two where it repeats.
      for (let h = 6; h < 365 * 24; h += 6) {
        const from = Date.UTC(2026, 0, 1) + (h - 6) * 3_600_000;
        if (offsetAt(from, tz) === offsetAt(from + 6 * 3_600_000, tz)) continue;
        let ms = from;
        while (offsetAt(ms, tz) === offsetAt(from, tz)) ms += 3_600_000;
        const offsets = [offsetAt(ms - 3_600_000, tz), offsetAt(ms, tz)];
        for (let q = -2 * 96; q <= 2 * 96; q++) {
          const t = new Date(ms + q * 900_000);
          const wall = `${t.getUTCFullYear()}-${pad(t.getUTCMonth() + 1)}-${pad(t.getUTCDate())}T${pad(t.getUTCHours())}:${pad(t.getUTCMinutes())}`;
          const instants = offsets
            .map((o) => t.getTime() - o)
            .filter((x) => localOf(x, tz) === wall)
            .sort((a, b) => a - b);
          if (instants.length === 0) continue; // skipped by the change
          assert.equal(zonedTimeToUtc(wall, tz).getTime(), instants[0], `${wall} in ${tz}`);
          checked++;
        }
      }
    }
    assert.ok(checked > 4000, `${checked} local times checked`);
  });

  test("a Sunday 01:00-04:00 Berlin window lasts 2 h in late March and 4 h in late October", () => {
    const s = silence({
      recurrence: { days: ["sun"], from: "01:00", to: "04:00", tz: "Europe/Berlin" },
    });
    const held = (from: string, to: string) => {
      // Minutes of the span the silence holds.
      let n = 0;
      for (let t = at(from); t < at(to); t += 60_000) if (silenceHolds(s, t)) n++;
      return n;
    };
    assert.equal(held("2026-03-28T12:00:00Z", "2026-03-29T12:00:00Z"), 120);
    assert.ok(silenceHolds(s, at("2026-03-29T00:00:00Z")), "01:00 CET, the start");
    assert.ok(silenceHolds(s, at("2026-03-29T01:59:00Z")), "03:59 CEST");
    assert.ok(!silenceHolds(s, at("2026-03-29T02:00:00Z")), "04:00 CEST, the end");
    assert.equal(held("2026-10-24T12:00:00Z", "2026-10-25T12:00:00Z"), 240);
    assert.ok(silenceHolds(s, at("2026-10-24T23:00:00Z")), "01:00 CEST, the start");
    assert.ok(!silenceHolds(s, at("2026-10-24T22:59:00Z")), "00:59 CEST, before");
    assert.ok(silenceHolds(s, at("2026-10-25T02:59:00Z")), "03:59 CET");
    assert.ok(!silenceHolds(s, at("2026-10-25T03:00:00Z")), "04:00 CET, the end");
    assert.ok(!silenceHolds(s, at("2026-10-26T00:30:00Z")), "a Monday");
  });
});

describe("windows through a clock change", () => {
  const sunday = (from: string, to: string) =>
    silence({ recurrence: { days: ["sun"], from, to, tz: "Europe/Berlin" } });
  // Minutes of 2026-10-24 12:00Z..2026-10-25 12:00Z the silence holds, and whether it holds
  // without a break from its first to its last minute.
  const october = (s: ReturnType<typeof silence>) => {
    const minutes: number[] = [];
    for (let t = at("2026-10-24T12:00:00Z"); t < at("2026-10-25T12:00:00Z"); t += 60_000) {
      if (silenceHolds(s, t)) minutes.push(t);
    }
    const unbroken = minutes.every((t, i) => i === 0 || t - minutes[i - 1] === 60_000);
    return { n: minutes.length, unbroken, first: minutes[0], last: minutes.at(-1) };
  };

  test("a Sunday 01:00-02:30 Berlin window holds through the repeated hour in late October", () => {
    // 01:00 CEST (23:00Z) to the second 02:30, in CET (01:30Z): 2.5 h without a hole.
    const w = october(sunday("01:00", "02:30"));
    assert.deepEqual(w, {
      n: 150,
      unbroken: true,
      first: at("2026-10-24T23:00:00Z"),
      last: at("2026-10-25T01:29:00Z"),
    });
    assert.ok(silenceHolds(sunday("01:00", "02:30"), at("2026-10-25T00:45:00Z")), "03:45 CEST-ish");
  });

  test("a Sunday window from inside the repeated hour starts at its first reading", () => {
    // 02:30 CEST (00:30Z) to 04:00 CET (03:00Z).
    assert.deepEqual(october(sunday("02:30", "04:00")), {
      n: 150,
      unbroken: true,
      first: at("2026-10-25T00:30:00Z"),
      last: at("2026-10-25T02:59:00Z"),
    });
    // Both ends repeated: the first 02:15 (00:15Z) to the second 02:45 (01:45Z).
    assert.deepEqual(october(sunday("02:15", "02:45")), {
      n: 90,
      unbroken: true,
      first: at("2026-10-25T00:15:00Z"),
      last: at("2026-10-25T01:44:00Z"),
    });
  });

  test("a window ending where the repeated hour begins ends at its first reading", () => {
    // New York, Sunday 2026-11-01: 01:00-01:59 happens twice (EDT from 05:00Z, EST from 06:00Z).
    // A 00:00-01:00 window is 00:00 EDT (04:00Z) to the first 01:00 (05:00Z), not the second.
    const ny = silence({
      recurrence: { days: ["sun"], from: "00:00", to: "01:00", tz: "America/New_York" },
    });
    assert.ok(!silenceHolds(ny, at("2026-11-01T03:59:00Z")), "23:59 EDT, before");
    assert.ok(silenceHolds(ny, at("2026-11-01T04:00:00Z")), "00:00 EDT, the start");
    assert.ok(silenceHolds(ny, at("2026-11-01T04:59:00Z")), "00:59 EDT");
    assert.ok(!silenceHolds(ny, at("2026-11-01T05:00:00Z")), "01:00 EDT, the end");
    assert.ok(!silenceHolds(ny, at("2026-11-01T05:30:00Z")), "01:30 EDT");
    assert.equal(holdsUntil(ny, at("2026-11-01T04:30:00Z")), at("2026-11-01T05:00:00Z"));
  });

  test("a window to 24:00 ends at the first midnight when midnight repeats", () => {
    // Havana, 2026-11-01: 00:00-00:59 happens twice (CDT from 04:00Z, CST from 05:00Z). A
    // Saturday 23:00-24:00 window ends at the first midnight (04:00Z).
    const havana = silence({
      recurrence: { days: ["sat"], from: "23:00", to: "24:00", tz: "America/Havana" },
    });
    assert.ok(silenceHolds(havana, at("2026-11-01T03:00:00Z")), "23:00 CDT, the start");
    assert.ok(silenceHolds(havana, at("2026-11-01T03:59:00Z")), "23:59 CDT");
    assert.ok(!silenceHolds(havana, at("2026-11-01T04:00:00Z")), "00:00 CDT, the end");
    assert.ok(!silenceHolds(havana, at("2026-11-01T04:45:00Z")), "00:45 CDT");
    assert.equal(holdsUntil(havana, at("2026-11-01T03:30:00Z")), at("2026-11-01T04:00:00Z"));
  });

  test("a Sunday window wholly in the hour skipped in late March vanishes, one ending in it stops at the jump", () => {
    const gone = sunday("02:15", "02:45");
    for (let t = at("2026-03-28T12:00:00Z"); t < at("2026-03-29T12:00:00Z"); t += 60_000) {
      assert.ok(!silenceHolds(gone, t), new Date(t).toISOString());
    }
    const cut = sunday("02:30", "04:00");
    assert.ok(!silenceHolds(cut, at("2026-03-29T00:59:00Z")), "01:59 CET");
    assert.ok(silenceHolds(cut, at("2026-03-29T01:00:00Z")), "03:00 CEST, the jump");
    assert.ok(!silenceHolds(cut, at("2026-03-29T02:00:00Z")), "04:00 CEST, the end");
  });
});

describe("coverage", () => {
  test("a silence holds only within its span, and expiring it ends it early", () => {
    const s = silence({ starts_at: "2026-05-01T10:00:00Z", ends_at: "2026-05-01T12:00:00Z" });
    assert.ok(!silenceHolds(s, at("2026-05-01T09:59:59Z")));
    assert.ok(silenceHolds(s, at("2026-05-01T10:00:00Z")));
    assert.ok(!silenceHolds(s, at("2026-05-01T12:00:00Z")), "the end is excluded");
    const cut = silence({
      starts_at: "2026-05-01T10:00:00Z",
      ends_at: "2026-05-01T12:00:00Z",
      expired_at: "2026-05-01T11:00:00Z",
    });
    assert.ok(silenceHolds(cut, at("2026-05-01T10:59:00Z")));
    assert.ok(!silenceHolds(cut, at("2026-05-01T11:00:00Z")));
  });

  test("silenceCovers a sensor only when the stream and a sensor glob match", () => {
    const t = at("2026-05-01T10:00:00Z");
    const whole = silence({ stream: "line-1*" });
    assert.ok(silenceCovers(whole, "line-1.boiler", "feature_3", t));
    assert.ok(silenceCovers(whole, "line-1.boiler", undefined, t), "the whole stream");
    assert.ok(!silenceCovers(whole, "line-2", "feature_3", t));
    const part = silence({ stream: "line-1*", sensors: ["feature_1?", "pump"] });
    assert.ok(silenceCovers(part, "line-1", "feature_12", t));
    assert.ok(silenceCovers(part, "line-1", "pump", t));
    assert.ok(!silenceCovers(part, "line-1", "feature_123", t));
    assert.ok(!silenceCovers(part, "line-1", undefined, t), "not the whole stream");
    assert.ok(silenceCoversAll(part, "line-1", ["feature_12", "pump"], t));
    assert.ok(!silenceCoversAll(part, "line-1", ["feature_12", "feature_2"], t), "one is not");
    assert.ok(!silenceCoversAll(part, "line-1", [], t));
    assert.ok(silenceCoversAll(whole, "line-1", [], t));
  });
});

describe("holdsUntil", () => {
  test("a recurring silence holds until its window's end in its zone, a plain one until its end", () => {
    const weekly = silence({
      recurrence: { days: ["sun"], from: "10:00", to: "12:00", tz: "Europe/Berlin" },
    });
    // Sunday 2026-11-01, 10:30 in Berlin (CET, UTC+1): the window ends at 11:00Z.
    assert.equal(holdsUntil(weekly, at("2026-11-01T09:30:00Z")), at("2026-11-01T11:00:00Z"));
    // Summer time (UTC+2): the same window ends at 10:00Z.
    assert.equal(holdsUntil(weekly, at("2026-06-07T08:30:00Z")), at("2026-06-07T10:00:00Z"));
    const nights = silence({
      recurrence: { days: ["mon"], from: "22:00", to: "24:00", tz: "UTC" },
    });
    // A window to 24:00 ends at the next day's midnight.
    assert.equal(holdsUntil(nights, at("2026-11-02T23:00:00Z")), at("2026-11-03T00:00:00Z"));
    // The silence's own end comes first when it is sooner.
    const short = silence({
      ends_at: "2026-11-01T10:15:00Z",
      recurrence: { days: ["sun"], from: "10:00", to: "12:00", tz: "UTC" },
    });
    assert.equal(holdsUntil(short, at("2026-11-01T10:05:00Z")), at("2026-11-01T10:15:00Z"));
    assert.equal(holdsUntil(silence({}), at("2026-05-01T00:00:00Z")), at("2026-11-30T00:00:00Z"));
    // A window ending in the hour skipped when clocks go forward ends at the jump (02:00 CET,
    // 01:00Z on 2026-03-29), not half an hour after it.
    const spring = silence({
      recurrence: { days: ["sun"], from: "01:00", to: "02:30", tz: "Europe/Berlin" },
    });
    const jump = at("2026-03-29T01:00:00Z");
    const end = holdsUntil(spring, at("2026-03-29T00:30:00Z"));
    assert.ok(Math.abs(end - jump) <= 1000, new Date(end).toISOString());
    assert.ok(silenceHolds(spring, end - 1000) && !silenceHolds(spring, end));
  });

  test("holdsUntil in the repeated hour is the second reading of the window's end", () => {
    const fall = silence({
      recurrence: { days: ["sun"], from: "01:00", to: "02:30", tz: "Europe/Berlin" },
    });
    // 02:10 CET (01:10Z), after the clocks went back: the window ends at 02:30 CET, 01:30Z.
    const now = at("2026-10-25T01:10:00Z");
    assert.equal(holdsUntil(fall, now), at("2026-10-25T01:30:00Z"));
    // 02:10 CEST (00:10Z), the first reading: the same end, not the first 02:30 (00:30Z).
    assert.equal(holdsUntil(fall, at("2026-10-25T00:10:00Z")), at("2026-10-25T01:30:00Z"));
    const end = holdsUntil(fall, now);
    assert.ok(silenceHolds(fall, end - 1) && !silenceHolds(fall, end));
    // Not holding: it has stopped already, never a time before now.
    assert.equal(holdsUntil(fall, at("2026-10-25T05:00:00Z")), at("2026-10-25T05:00:00Z"));
  });
});

describe("silenceCoversAny", () => {
  test("answers as silenceCovers over the list, working a weekly window out once, not per sensor", () => {
    const weekly = silence({
      stream: "line-*",
      sensors: ["pump_*"],
      recurrence: { days: ["sun"], from: "10:00", to: "12:00", tz: "Europe/Berlin" },
    });
    const sunday = at("2026-11-01T09:30:00Z");
    const monday = at("2026-11-02T09:30:00Z");
    const names = Array.from({ length: 25_000 }, (_, i) => `feature_${i}`);
    const parts = Intl.DateTimeFormat.prototype.formatToParts;
    let conversions = 0;
    Intl.DateTimeFormat.prototype.formatToParts = function (this: Intl.DateTimeFormat, d) {
      conversions++;
      return parts.call(this, d);
    };
    try {
      assert.ok(!silenceCoversAny(weekly, "line-1", names, sunday), "no sensor of it");
      assert.ok(conversions <= 4, `${conversions} time-zone conversions for 25,000 sensors`);
      assert.ok(silenceCoversAny(weekly, "line-1", [...names, "pump_7"], sunday));
      assert.ok(!silenceCoversAny(weekly, "line-1", ["pump_7"], monday), "outside its window");
      assert.ok(!silenceCoversAny(weekly, "kiln", ["pump_7"], sunday), "another stream");
      assert.ok(!silenceCoversAny(weekly, "line-1", [], sunday), "no sensor asked about");
    } finally {
      Intl.DateTimeFormat.prototype.formatToParts = parts;
    }
    const whole = silence({ stream: "line-*" });
    assert.ok(silenceCoversAny(whole, "line-1", ["anything"], sunday), "a whole-stream one");
    assert.ok(silenceCoversAny(whole, "line-1", [], sunday));
    for (const name of ["pump_1", "feature_3"]) {
      assert.equal(
        silenceCoversAny(weekly, "line-1", [name], sunday),
        silenceCovers(weekly, "line-1", name, sunday),
      );
    }
  });
});
