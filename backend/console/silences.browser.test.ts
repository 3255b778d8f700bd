import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Browser, Page } from "playwright-core";
import { startBackend } from "../_test/backend_process.ts";
import type { ServiceProcess } from "../_test/spawn_service.ts";
import {
  checkAccessibility as checkPage,
  focusOn,
  launchChromium,
  submitWithEnter,
  tabTo as tabToShared,
  watchErrors,
} from "./_browser_checks.ts";

const TOKEN = "silences-console-token";
const HOSTILE_REASON = `<img src=x onerror="document.title='pwned'"> valve "3" & co`;
const HOSTILE_NAME = "<b>Ana</b> & 'Bo'";

let backend: ServiceProcess;
let browser: Browser;
let base: string;

before(async () => {
  ({ service: backend, base } = await startBackend({
    CONSOLE_TOKEN: TOKEN,
  }));
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await backend?.stop("SIGTERM");
});

/** The console's checks, and the h1 before any other heading (the banner comes above it). */
async function checkAccessibility(page: Page, where: string) {
  await checkPage(page, where);
  const first = await page.evaluate(
    () => document.querySelector("h1, h2, h3, h4, h5, h6")?.tagName,
  );
  assert.equal(first, "H1", `${where}: the h1 comes first`);
}

const tabTo = (page: Page, selector: string) => tabToShared(page, selector, 120);

/** Types a time into the focused field as the form asks: YYYY-MM-DD HH:MM, here in UTC. */
async function typeDateTime(page: Page, at: Date) {
  await page.keyboard.type(at.toISOString().slice(0, 16).replace("T", " "));
}

async function apiSilences(state: string) {
  const res = await fetch(`${base}/api/v1/silences?state=${state}`);
  return (await res.json()).silences as Record<string, unknown>[];
}

test("a silence is created, shown with its banner and reminder, and expired with the keyboard only", async () => {
  const page = await browser.newPage({ locale: "en-US", viewport: { width: 1280, height: 900 } });
  const errors = watchErrors(page);
  await page.goto(`${base}/silences`);
  await checkAccessibility(page, "Silences");
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement?.className), "skip");

  // The console token first: without it the form is refused.
  await tabTo(page, "summary");
  await page.keyboard.press("Enter");
  await tabTo(page, "#console-token");
  await page.keyboard.type(TOKEN);
  await submitWithEnter(page);
  assert.equal(new URL(page.url()).pathname, "/silences");

  const ends = new Date(Math.floor(Date.now() / 60_000) * 60_000 + 60 * 60_000);
  await tabTo(page, "#silence-stream");
  await page.keyboard.type("line-1*");
  await page.keyboard.press("Tab");
  await page.keyboard.type("feature_42*");
  await page.keyboard.press("Enter");
  await page.keyboard.type("pump\\*");
  await tabTo(page, "#silence-ends");
  await typeDateTime(page, ends);
  await tabTo(page, "#silence-reason");
  await page.keyboard.type(HOSTILE_REASON);
  await page.keyboard.press("Tab");
  await page.keyboard.type(HOSTILE_NAME);
  await submitWithEnter(page);
  assert.equal(new URL(page.url()).pathname, "/silences");
  // The page says what was created, and the focus starts there, not at the top of the page.
  await focusOn(page, "#silence-done");
  assert.equal(await page.getAttribute("#silence-done", "role"), "status");
  assert.match(
    (await page.textContent("#silence-done")) ?? "",
    /^Silence created: streams line-1\*, sensors feature_42\*, pump\\\*, from .+Z to .+Z\.$/,
  );

  const [stored] = (await apiSilences("active")).filter((s) => s.reason === HOSTILE_REASON);
  assert.ok(stored, "stored through the API's validation");
  assert.deepEqual(stored.matchers, { stream: "line-1*", sensors: ["feature_42*", "pump\\*"] });
  assert.equal(stored.created_by, HOSTILE_NAME);
  assert.equal(stored.ends_at, ends.toISOString(), "read in the form's zone (UTC)");
  const id = stored.silence_id as string;

  // Listed, reminded of (ends within 2 h), bannered; every user-written string is text.
  const row = page.locator(`#active-silences tr[data-silence="${id}"]`);
  assert.equal(await row.locator("td.reason").textContent(), HOSTILE_REASON);
  assert.equal(await row.locator("td.author").textContent(), HOSTILE_NAME);
  assert.equal(await page.locator(`#ending-soon li[data-silence="${id}"]`).count(), 1);
  assert.equal(await page.locator("main img, main td.author b").count(), 0, "no markup injected");
  assert.notEqual(await page.title(), "pwned");
  await checkAccessibility(page, "Silences with a silence");

  const loading = Date.now();
  await page.goto(`${base}/`);
  const loaded = Date.now();
  const banner = page.locator(`.silence-banner li[data-silence="${id}"]`);
  assert.equal(await banner.getAttribute("data-holding"), "true");
  const bannerText = (await banner.textContent()) ?? "";
  assert.match(bannerText, /Silenced now: streams line-1\*, sensors feature_42\*, pump\\\*/);
  assert.ok(bannerText.includes(HOSTILE_REASON), bannerText);
  // Whole minutes left when the page was made: what the clock allows, however slow the steps.
  const [, h, m] = bannerText.match(/ends in (?:(\d+) h )?(\d+) min/) ?? [];
  const minutesLeft = Number(h ?? 0) * 60 + Number(m);
  const left = (at: number) => Math.floor(Math.round((ends.getTime() - at) / 1000) / 60);
  assert.ok(
    minutesLeft >= left(loaded) && minutesLeft <= left(loading),
    `${bannerText}: ${left(loaded)} to ${left(loading)} min`,
  );
  assert.equal(await page.locator("main img").count(), 0);
  await checkAccessibility(page, "Now with the banner");

  // Expire it with the keyboard: it moves to the expired list with who and why.
  await page.goto(`${base}/silences`);
  await tabTo(page, `#expire-by-${id}`);
  await page.keyboard.type("Ben");
  await page.keyboard.press("Tab");
  await page.keyboard.type("pump back <i>early</i>");
  await page.keyboard.press("Tab");
  assert.equal(
    await page.evaluate(() => document.activeElement?.textContent?.trim()),
    "Expire now",
  );
  await submitWithEnter(page);
  await focusOn(page, `#silence-done[data-silence="${id}"]`);
  assert.match(
    (await page.textContent("#silence-done")) ?? "",
    /^Silence expired: streams line-1\*, sensors feature_42\*, pump\\\*, by Ben at .+Z\.$/,
  );
  const expired = page.locator(`#expired-silences tr[data-silence="${id}"]`);
  assert.match(
    (await expired.textContent()) ?? "",
    /expired by Ben at .*: pump back <i>early<\/i>/,
  );
  assert.equal(await page.locator(`#active-silences tr[data-silence="${id}"]`).count(), 0);
  assert.equal(await page.locator(`.silence-banner li[data-silence="${id}"]`).count(), 0);
  assert.deepEqual(errors, []);
  await page.close();
});

test("a refused silence keeps what was typed and says why; a weekly recurrence is set with the keyboard", async () => {
  const context = await browser.newContext({ locale: "en-US" });
  // The token as the first test set it: a cookie of this site.
  await context.addCookies([{ name: "console_token", value: TOKEN, url: base }]);
  const page = await context.newPage();
  const errors = watchErrors(page);
  await page.goto(`${base}/silences`);

  const ends = new Date(Math.floor(Date.now() / 60_000) * 60_000 + 7 * 86_400_000);
  await tabTo(page, "#silence-stream");
  await page.keyboard.type("*");
  await tabTo(page, "#silence-tz");
  await page.keyboard.press("Control+A");
  await page.keyboard.type("Europe/Berlin");
  await tabTo(page, "#silence-ends");
  // Read in Europe/Berlin; a week ahead, so its offset cannot push it past 90 days or now.
  await typeDateTime(page, ends);
  await tabTo(page, "#silence-day-sun");
  await page.keyboard.press("Space");
  await tabTo(page, "#silence-from");
  await page.keyboard.type("01:00");
  await page.keyboard.press("Tab");
  await page.keyboard.type("04:00");
  await tabTo(page, "#silence-reason");
  await page.keyboard.type("weekly shutdown");
  await page.keyboard.press("Tab");
  await page.keyboard.type("Cy");
  await submitWithEnter(page);

  // Every stream and sensor: refused until confirmed, nothing stored, nothing typed lost.
  const error = await page.textContent("#silence-error");
  assert.match(error ?? "", /“I mean to silence every sensor of every stream” must be ticked/);
  assert.equal(await page.getAttribute("#silence-error", "role"), "alert");
  assert.equal(await page.inputValue("#silence-stream"), "*");
  assert.equal(await page.inputValue("#silence-tz"), "Europe/Berlin");
  assert.equal(await page.inputValue("#silence-reason"), "weekly shutdown");
  assert.equal(await page.inputValue("#silence-from"), "01:00");
  assert.equal(await page.isChecked("#silence-day-sun"), true);
  assert.equal(
    (await apiSilences("active")).filter((s) => s.reason === "weekly shutdown").length,
    0,
  );
  await checkAccessibility(page, "Silences refused");

  await tabTo(page, "#silence-confirm-all");
  await page.keyboard.press("Space");
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), "Create silence");
  await submitWithEnter(page);
  assert.equal(await page.locator("#silence-error").count(), 0);
  const [stored] = (await apiSilences("active")).filter((s) => s.reason === "weekly shutdown");
  assert.deepEqual(stored.recurrence, {
    days: ["sun"],
    from: "01:00",
    to: "04:00",
    tz: "Europe/Berlin",
  });
  assert.deepEqual(stored.matchers, { stream: "*", sensors: [] });
  const row = page.locator(`#active-silences tr[data-silence="${stored.silence_id}"]`);
  assert.match((await row.textContent()) ?? "", /every Sunday, 01:00 to 04:00 \(Europe\/Berlin\)/);

  // Expired with the keyboard so it does not silence the other tests' streams.
  await tabTo(page, `#expire-by-${stored.silence_id}`);
  await page.keyboard.type("Cy");
  await submitWithEnter(page);
  assert.equal(
    await page.locator(`#expired-silences tr[data-silence="${stored.silence_id}"]`).count(),
    1,
  );
  // The refused form's page came with its 400 status, which Chromium reports; nothing else.
  assert.deepEqual(errors, [
    "console: Failed to load resource: the server responded with a status of 400 (Bad Request)",
  ]);
  await context.close();
});

test("acting without the console token is refused on the page and stores nothing", async () => {
  const page = await browser.newPage({ locale: "en-US" });
  await page.goto(`${base}/silences`);
  const before = (await apiSilences("pending")).length + (await apiSilences("active")).length;
  await tabTo(page, "#silence-stream");
  await page.keyboard.type("kiln");
  await tabTo(page, "#silence-ends");
  await typeDateTime(page, new Date(Date.now() + 2 * 86_400_000));
  await tabTo(page, "#silence-reason");
  await page.keyboard.type("no token");
  await page.keyboard.press("Tab");
  await page.keyboard.type("Dee");
  await submitWithEnter(page);
  assert.match((await page.textContent("#silence-error")) ?? "", /Console token/);
  const after = (await apiSilences("pending")).length + (await apiSilences("active")).length;
  assert.equal(after, before);

  // "Expire now" without the token: refused in that silence's row, what was typed kept there.
  const made = await fetch(`${base}/api/v1/silences`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({
      matchers: { stream: "kiln-2" },
      ends_at: new Date(Date.now() + 86_400_000).toISOString(),
      reason: "burner service",
      created_by: "Ana",
    }),
  });
  assert.equal(made.status, 201, await made.clone().text());
  const id = (await made.json()).silence.silence_id as string;
  await page.goto(`${base}/silences`);
  // Its controls are named for this silence, as the browser computes the names; the button's
  // name starts with what it shows.
  const row = page.locator(`#active-silences tr[data-silence="${id}"]`);
  const which =
    "the silence of kiln-2, every sensor, from \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ";
  assert.equal(
    await row
      .getByRole("textbox", { name: new RegExp(`^Your name \\(expire ${which}\\)$`) })
      .count(),
    1,
  );
  assert.equal(
    await row
      .getByRole("textbox", { name: new RegExp(`^Why \\(optional\\) \\(expire ${which}\\)$`) })
      .count(),
    1,
  );
  assert.equal(
    await row.getByRole("button", { name: new RegExp(`^Expire now: ${which}$`) }).count(),
    1,
  );
  await tabTo(page, `#expire-by-${id}`);
  await page.keyboard.type("Dee");
  await page.keyboard.press("Tab");
  await page.keyboard.type("burner back <b>early</b>");
  await submitWithEnter(page);
  assert.match((await row.locator("#expire-error").textContent()) ?? "", /Console token/);
  // The focus starts on the message, in that row.
  await page.waitForFunction(() => document.activeElement?.id === "expire-error");
  assert.equal(await row.locator("#expire-error").getAttribute("role"), "alert");
  assert.equal(await page.locator("#silence-error").count(), 0, "not at the top");
  assert.equal(await page.inputValue(`#expire-by-${id}`), "Dee");
  assert.equal(await page.inputValue(`#expire-reason-${id}`), "burner back <b>early</b>");
  assert.equal((await apiSilences("active")).find((s) => s.silence_id === id)?.state, "active");
  await checkAccessibility(page, "Silences, expiry refused");
  await page.close();
});

test("the expire forms of three silences of one stream from one start have names of their own", async () => {
  // Planned maintenance: one stream, one start, a silence per group of sensors.
  const starts = new Date(Math.floor(Date.now() / 60_000) * 60_000 + 86_400_000).toISOString();
  const ids: string[] = [];
  for (const sensors of ["pump*", "valve*", "temp*"]) {
    const made = await fetch(`${base}/api/v1/silences`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({
        matchers: { stream: "line-c", sensors: [sensors] },
        starts_at: starts,
        ends_at: new Date(Date.parse(starts) + 12 * 3_600_000).toISOString(),
        reason: "shutdown",
        created_by: "Ana",
      }),
    });
    assert.equal(made.status, 201, await made.clone().text());
    ids.push((await made.json()).silence.silence_id);
  }
  const page = await browser.newPage({ locale: "en-US" });
  try {
    await page.goto(`${base}/silences`);
    // The names as Chromium's accessibility tree gives them to a screen reader or speech user.
    const names: string[] = [];
    for (const id of ids) {
      const row = page.locator(`#pending-silences tr[data-silence="${id}"]`);
      const snapshot = await row.ariaSnapshot();
      names.push(
        ...[...snapshot.matchAll(/- '?(textbox|button) "([^"]*)"/g)].map((m) => `${m[1]} ${m[2]}`),
      );
    }
    assert.equal(names.length, 9, names.join("\n"));
    assert.equal(new Set(names).size, names.length, names.join("\n"));
    const row = page.locator(`#pending-silences tr[data-silence="${ids[1]}"]`);
    assert.equal(
      await row
        .getByRole("button", {
          name: `Expire now: the silence of line-c, sensors valve*, from ${starts.slice(0, 10)} ${starts.slice(11, 19)}Z`,
          exact: true,
        })
        .count(),
      1,
    );
    // And on the whole page: no two controls share a name.
    const all = [
      ...(await page.locator("main").ariaSnapshot()).matchAll(
        /- '?(textbox|button|combobox|checkbox) "([^"]*)"/g,
      ),
    ].map((m) => `${m[1]} ${m[2]}`);
    assert.deepEqual(
      all.filter((n, i) => all.indexOf(n) !== i),
      [],
    );
  } finally {
    await page.close();
  }
});
