// The Now page's live rows in Chromium when the sign-in ends: said so, with the way to sign in, and back once signed in elsewhere.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Browser, Page } from "playwright-core";
import { post } from "../alerts/_fixtures.ts";
import { incidentAlert } from "../incidents/_fixtures.ts";
import { launchChromium, tabTo } from "./_browser_checks.ts";
import { type ConsoleInProcess, serveConsole } from "./_console_in_process.ts";

/** The sessions' clock: moved past a session's 12 h to end it without waiting. */
let clock = Date.now();
let token: string;
let backend: ConsoleInProcess;
let base: string;
let browser: Browser;

before(async () => {
  backend = await serveConsole({ people: [["olga", "operator"]], now: () => clock });
  ({ base } = backend);
  token = backend.tokens.olga;
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await backend?.close();
});

/** On the sign-in page: Tab to the token field, type the token, Enter; waits for the Now page. */
async function signInWithKeyboard(page: Page) {
  assert.equal(new URL(page.url()).pathname, "/signin");
  await tabTo(page, "#signin-token", 20);
  await page.keyboard.type(token);
  await Promise.all([page.waitForURL(`${base}/`), page.keyboard.press("Enter")]);
}

/** Stores an opened incident (the engine's alerts need no sign-in) and returns its id. */
async function newIncident(): Promise<string> {
  const alert = incidentAlert({
    incidentId: crypto.randomUUID(),
    event: "opened",
    start: new Date().toISOString(),
    sensors: [{ idx: 4242, severity: 20 }],
  });
  assert.equal((await fetch(`${base}/api/v1/alert`, post(alert))).status, 201);
  return alert.incident_id;
}

test("the Now page says its live updates stopped when the sign-in ends, links to sign in, and resumes once signed in in another tab", async () => {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(`${base}/`);
    await signInWithKeyboard(page);
    await page.waitForSelector('#live-status[data-live="true"]', { timeout: 15_000 });

    // The session ends (12 h later); the stream notices at the next change and ends. The browser
    // reconnects, is answered 401, and gives up: the page says so instead of "reconnecting".
    clock += 13 * 3_600_000;
    await newIncident();
    await page.waitForSelector('#live-status[data-live="signed-out"]', { timeout: 30_000 });
    assert.equal(
      await page.textContent("#live-status"),
      "Live updates stopped: sign in again. They start again by themselves once you have.",
    );
    await tabTo(page, "#live-status a");
    assert.equal(await page.getAttribute("#live-status a", "href"), "/signin?next=%2F");

    // Signed in again in another tab: the first one's rows are live again, without a reload.
    const other = await context.newPage();
    await other.goto(`${base}/signin?next=%2F`);
    await signInWithKeyboard(other);
    await page.waitForSelector('#live-status[data-live="true"]', { timeout: 30_000 });
    const id = await newIncident();
    await page.waitForSelector(`#open-incidents tr[data-incident="${id}"]`, { timeout: 15_000 });
  } finally {
    await context.close();
  }
});

test("without a sign-in the live stream is answered 401, not sent to the sign-in page as a page is", async () => {
  const stream = await fetch(`${base}/events`, {
    headers: { accept: "text/event-stream" },
    redirect: "manual",
  });
  assert.equal(stream.status, 401);
  assert.equal((await stream.json()).error, "unauthenticated");
  const page = await fetch(`${base}/`, { redirect: "manual" });
  assert.equal(page.status, 303);
  assert.equal(page.headers.get("location"), "/signin?next=%2F");
});
