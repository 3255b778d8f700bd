// After a console form is sent by keyboard, the focus starts on what the page says came of it.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Browser, Page } from "playwright-core";
import { startBackend } from "../_test/backend_process.ts";
import type { ServiceProcess } from "../_test/spawn_service.ts";
import { post } from "../alerts/_fixtures.ts";
import { incidentAlert } from "../incidents/_fixtures.ts";
import {
  checkAccessibility,
  focusOn,
  launchChromium,
  submitWithEnter,
  tabTo,
  watchErrors,
} from "./_browser_checks.ts";

const TOKEN = "form-focus-console-token";

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

/** Whether `selector` is marked invalid and described by the message `errorId`. */
async function invalidState(page: Page, selector: string) {
  return page.$eval(selector, (el) => [
    el.getAttribute("aria-invalid"),
    el.getAttribute("aria-describedby"),
  ]);
}

test("a refused acknowledgement or verdict sent by keyboard starts the focus on its message, the field marked", async () => {
  const alert = incidentAlert({
    incidentId: crypto.randomUUID(),
    event: "opened",
    start: new Date().toISOString(),
    sensors: [{ idx: 7, severity: 20 }],
  });
  assert.equal((await fetch(`${base}/api/v1/alert`, post(alert))).status, 201);
  const context = await browser.newContext({ locale: "en-US" });
  await context.addCookies([{ name: "console_token", value: TOKEN, url: base }]);
  const page = await context.newPage();
  const errors = watchErrors(page);
  await page.goto(`${base}/incidents/${alert.incident_id}`);

  // A name of spaces passes the browser's `required`; the server refuses it.
  await tabTo(page, "#ack-by");
  await page.keyboard.type("   ");
  await submitWithEnter(page);
  await focusOn(page, "#ack-error");
  assert.match((await page.textContent("#ack-error")) ?? "", /“Your name” must be a name/);
  assert.deepEqual(await invalidState(page, "#ack-by"), ["true", "ack-error"]);
  // The field to correct is the next Tab stop, not 7 to 11 away.
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement?.id), "ack-by");
  await checkAccessibility(page, "Incident, acknowledgement refused");

  await tabTo(page, "#verdict-kind");
  await page.keyboard.type("t");
  await tabTo(page, "#verdict-by");
  await page.keyboard.type("  ");
  await submitWithEnter(page);
  await focusOn(page, "#verdict-error");
  assert.deepEqual(await invalidState(page, "#verdict-by"), ["true", "verdict-error"]);
  assert.equal(await page.getAttribute("#ack-by", "aria-invalid"), null, "only the refused form");

  // Sent right, each says so where the focus starts.
  await tabTo(page, "#verdict-by");
  await page.keyboard.type("Ana");
  await submitWithEnter(page);
  await focusOn(page, "#verdict-done");
  assert.equal(await page.textContent("#verdict-done"), "Verdict recorded.");
  await tabTo(page, "#ack-by");
  await page.keyboard.type("Ana");
  await submitWithEnter(page);
  await focusOn(page, "#ack-done");
  // Each refusal is a 400 page, which Chromium reports on its console; nothing else.
  assert.deepEqual(
    errors.filter((e) => !e.includes("status of 400")),
    [],
  );
  await context.close();
});

test("an acknowledgement someone gave first starts the focus on whose stands, the note typed kept", async () => {
  const alert = incidentAlert({
    incidentId: crypto.randomUUID(),
    event: "opened",
    start: new Date().toISOString(),
    sensors: [{ idx: 7, severity: 20 }],
  });
  assert.equal((await fetch(`${base}/api/v1/alert`, post(alert))).status, 201);
  const context = await browser.newContext({ locale: "en-US" });
  await context.addCookies([{ name: "console_token", value: TOKEN, url: base }]);
  const page = await context.newPage();
  const errors = watchErrors(page);
  await page.goto(`${base}/incidents/${alert.incident_id}`);
  await tabTo(page, "#ack-by");
  await page.keyboard.type("Ana");
  await tabTo(page, "#ack-note");
  await page.keyboard.type("valve 3 checked");

  // Meanwhile cy acknowledges through the API: first wins.
  const first = await fetch(`${base}/api/v1/incidents/${alert.incident_id}/ack`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({ by: "cy", note: "cy took it" }),
  });
  assert.equal(first.status, 201);

  await tabTo(page, "form.ack button");
  await submitWithEnter(page);
  await focusOn(page, "#ack-error");
  assert.equal(await page.getAttribute("#ack-error", "role"), "alert");
  assert.match(
    (await page.textContent("#ack-error")) ?? "",
    /^Already acknowledged by cy at .+Z: your note was not recorded; it is kept below\.$/,
  );
  assert.equal(await page.inputValue("#ack-note"), "valve 3 checked");
  assert.equal(await page.$("#ack-done"), null, "never said to be recorded");
  await checkAccessibility(page, "Incident, acknowledged first by someone else");
  // The 409 page is reported on Chromium's console; nothing else.
  assert.deepEqual(
    errors.filter((e) => !e.includes("status of 409")),
    [],
  );
  await context.close();
});

test("a silence refused for want of the token says so beside its form; the token stored is confirmed, focused", async () => {
  const page = await browser.newPage({ locale: "en-US" });
  await page.goto(`${base}/silences`);
  await tabTo(page, "#silence-stream");
  await page.keyboard.type("kiln-9");
  await tabTo(page, "#silence-ends");
  const ends = new Date(Date.now() + 2 * 86_400_000);
  await page.keyboard.type(ends.toISOString().slice(0, 16).replace("T", " "));
  await tabTo(page, "#silence-reason");
  await page.keyboard.type("burner service");
  await page.keyboard.press("Tab");
  await page.keyboard.type("Dee");
  await submitWithEnter(page);

  // The message takes the focus, in the New silence section just above the form, in plain words.
  await focusOn(page, "#silence-error");
  assert.equal(
    await page.$eval("#silence-error", (el) => {
      const section = el.closest("section");
      const form = section?.querySelector("form.silence-new");
      return (
        section?.getAttribute("aria-labelledby") === "new-heading" &&
        form !== null &&
        form !== undefined &&
        (el.compareDocumentPosition(form) & Node.DOCUMENT_POSITION_FOLLOWING) !== 0
      );
    }),
    true,
    "in the New silence section, above its form",
  );
  const said = (await page.textContent("#silence-error")) ?? "";
  assert.match(said, /Open “Console token” on this page/);
  assert.ok(!said.includes("Bearer"), said);

  // The token form the message names, by keyboard: the page it returns to says it was stored.
  await tabTo(page, "summary");
  await page.keyboard.press("Enter");
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement?.id), "console-token");
  await page.keyboard.type(TOKEN);
  await submitWithEnter(page);
  assert.equal(new URL(page.url()).pathname, "/silences");
  await focusOn(page, "#console-token-stored");
  assert.equal(await page.getAttribute("#console-token-stored", "role"), "status");
  assert.match((await page.textContent("#console-token-stored")) ?? "", /^Token stored/);
  await checkAccessibility(page, "Silences, token stored");
  await page.close();
});
