// The sign-in page in Chromium after a wrong token or an ended session: the token field has the focus and the message as its description.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Browser, Page } from "playwright-core";
import { launchChromium, tabTo } from "./_browser_checks.ts";
import { type ConsoleInProcess, serveConsole } from "./_console_in_process.ts";

let backend: ConsoleInProcess;
let base: string;
let browser: Browser;

before(async () => {
  backend = await serveConsole({ people: [["olga", "operator"]] });
  base = backend.base;
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await backend?.close();
});

/** The focused element's id, invalid state and accessible description (its describedby texts). */
const focused = (page: Page) =>
  page.evaluate(() => {
    const el = document.activeElement as HTMLElement | null;
    const ids = el?.getAttribute("aria-describedby")?.split(/\s+/) ?? [];
    return {
      id: el?.id ?? "",
      invalid: el?.getAttribute("aria-invalid") ?? null,
      description: ids.map((i) => document.getElementById(i)?.textContent ?? "").join(" "),
    };
  });

test("a refused sign-in puts the focus in the token field, described by the refusal", async () => {
  const page = await browser.newPage();
  try {
    await page.goto(`${base}/signin`);
    await tabTo(page, "#signin-token", 20);
    await page.keyboard.type("not-a-token");
    await Promise.all([page.waitForEvent("load"), page.keyboard.press("Enter")]);
    assert.match((await page.textContent("#signin-error")) ?? "", /That token is not valid/);
    const got = await focused(page);
    assert.equal(got.id, "signin-token", "the focus starts in the token field");
    assert.equal(got.invalid, "true");
    assert.match(got.description, /That token is not valid \(unknown, removed or expired\)/);
  } finally {
    await page.close();
  }
});

test("the 'session ended' notice puts the focus in the token field, described by the notice", async () => {
  const page = await browser.newPage();
  try {
    await page.goto(`${base}/signin?ended=1`);
    const got = await focused(page);
    assert.equal(got.id, "signin-token");
    assert.match(got.description, /Your session ended/);
  } finally {
    await page.close();
  }
});
