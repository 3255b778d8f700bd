// Chromium (playwright-core), keyboard only, against a real backend with CONSOLE_TOKEN: a form refused for want of the token keeps what was typed through the token form, and then acts with it.
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

const TOKEN = "token-refused-console-token";

let backend: ServiceProcess;
let browser: Browser;
let base: string;

before(async () => {
  ({ service: backend, base } = await startBackend({ CONSOLE_TOKEN: TOKEN }));
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await backend?.stop("SIGTERM");
});

/** Opens the page's "Console token" fold, types the token and sends it, by keyboard. */
async function useToken(page: Page) {
  await tabTo(page, "details summary");
  await page.keyboard.press("Enter");
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement?.id), "console-token");
  await page.keyboard.type(TOKEN);
  await submitWithEnter(page);
  await focusOn(page, "#console-token-stored");
}

/** What the page says once the token is stored: the refused form is back as it was typed. */
async function saysKept(page: Page) {
  assert.match(
    (await page.textContent("#console-token-stored")) ?? "",
    /^Token stored: .*filled in as you typed it/,
  );
}

const crlf = (s: string) => s.replace(/\r\n/g, "\n");

test("an acknowledgement refused for want of the token is sent with its note once the token is given", async () => {
  const alert = incidentAlert({
    incidentId: crypto.randomUUID(),
    event: "opened",
    start: new Date().toISOString(),
    sensors: [{ idx: 7, severity: 20 }],
  });
  assert.equal((await fetch(`${base}/api/v1/alert`, post(alert))).status, 201);
  const note = "valve <3> shut & drained\nsecond line: é, 温度";
  const page = await browser.newPage({ locale: "en-US" });
  const errors = watchErrors(page);
  try {
    await page.goto(`${base}/incidents/${alert.incident_id}`);
    await tabTo(page, "#ack-by");
    await page.keyboard.type("Ana");
    await page.keyboard.press("Tab");
    await page.keyboard.type(note);
    await page.keyboard.press("Tab");
    await submitWithEnter(page);
    await focusOn(page, "#ack-error");
    assert.match((await page.textContent("#ack-error")) ?? "", /Open “Console token”/);

    await useToken(page);
    // The refused form, filled in as typed, on the page the token form went back to.
    assert.equal(await page.inputValue("#ack-by"), "Ana");
    assert.equal(crlf(await page.inputValue("#ack-note")), note);
    await saysKept(page);
    await checkAccessibility(page, "Incident, token stored");
    await tabTo(page, "#ack-by");
    await page.keyboard.press("Enter");
    await page.waitForURL(`${base}/incidents/${alert.incident_id}?done=ack`);
    await focusOn(page, "#ack-done");

    const detail = await (await fetch(`${base}/api/v1/incidents/${alert.incident_id}`)).json();
    assert.equal(detail.acknowledged.by, "Ana");
    assert.equal(crlf(detail.acknowledged.note), note);
    // The refusal is a 401 page, which Chromium reports on its console; nothing else.
    assert.deepEqual(
      errors.filter((e) => !e.includes("status of 401")),
      [],
    );
  } finally {
    await page.close();
  }
});

test("a silence refused for want of the token is created as typed, days and sensors kept, once the token is given", async () => {
  const page = await browser.newPage({ locale: "en-US" });
  try {
    await page.goto(`${base}/silences`);
    await tabTo(page, "#silence-stream");
    await page.keyboard.type("kiln-kept");
    await page.keyboard.press("Tab");
    await page.keyboard.type("burner*\ntemp in");
    await tabTo(page, "#silence-ends");
    const ends = new Date(Date.now() + 2 * 86_400_000);
    await page.keyboard.type(ends.toISOString().slice(0, 16).replace("T", " "));
    for (const day of ["#silence-day-tue", "#silence-day-sat"]) {
      await tabTo(page, day);
      await page.keyboard.press("Space");
    }
    await tabTo(page, "#silence-from");
    await page.keyboard.type("01:00");
    await page.keyboard.press("Tab");
    await page.keyboard.type("04:00");
    await tabTo(page, "#silence-reason");
    await page.keyboard.type("burner service");
    await page.keyboard.press("Tab");
    await page.keyboard.type("Dee");
    await submitWithEnter(page);
    await focusOn(page, "#silence-error");

    await useToken(page);
    assert.equal(await page.inputValue("#silence-stream"), "kiln-kept");
    assert.equal(crlf(await page.inputValue("#silence-sensors")), "burner*\ntemp in");
    const ticked = await page.$$eval("input[name=days]:checked", (all) =>
      all.map((el) => (el as HTMLInputElement).value),
    );
    assert.deepEqual(ticked, ["tue", "sat"]);
    assert.equal(await page.inputValue("#silence-by"), "Dee");
    await saysKept(page);
    await tabTo(page, "#silence-by");
    await submitWithEnter(page);
    await focusOn(page, "#silence-done");

    const list = await (await fetch(`${base}/api/v1/silences?state=active`)).json();
    const created = list.silences.find(
      (s: { matchers: { stream: string } }) => s.matchers.stream === "kiln-kept",
    );
    assert.deepEqual(created.matchers.sensors, ["burner*", "temp in"]);
    assert.deepEqual(created.recurrence.days, ["tue", "sat"]);
    assert.equal(created.reason, "burner service");
    assert.equal(created.created_by, "Dee");
  } finally {
    await page.close();
  }
});
