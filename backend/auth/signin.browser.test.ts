// Token sign-in in Chromium with the keyboard only: from a protected page to the form and back, a verdict, sign-out; a viewer's page; escaping; a wrong token.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { post } from "../alerts/_fixtures.ts";
import {
  checkAccessibility,
  launchChromium,
  tabTo,
  watchErrors,
} from "../console/_browser_checks.ts";
import { type ConsoleInProcess, serveConsole } from "../console/_console_in_process.ts";
import { incidentAlert } from "../incidents/_fixtures.ts";
import { SESSION_COOKIE } from "./session.ts";
import { addToken } from "./token_file.ts";

const INCIDENT = "0b7e4f2a-3c1d-4e5f-8a9b-1c2d3e4f5a6b";
const HOSTILE = "<script>alert(1)</script>";

let backend: ConsoleInProcess;
let base: string;
let browser: Browser;
let tokens: Record<string, string>;

before(async () => {
  backend = await serveConsole({
    people: [
      ["olga", "operator"],
      ["victor", "viewer"],
    ],
  });
  ({ base, tokens } = backend);
  const stored = await fetch(
    `${base}/api/v1/alert`,
    post(
      incidentAlert({ incidentId: INCIDENT, event: "opened", sensors: [{ idx: 7, severity: 25 }] }),
    ),
  );
  assert.equal(stored.status, 201, await stored.text());
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await backend?.close();
});

/** Whether the element `selector` has the keyboard focus. */
function focused(page: Page, selector: string): Promise<boolean> {
  return page.evaluate((s) => document.activeElement?.matches(s) ?? false, selector);
}

/**
 * On the sign-in page: Tab to the field labelled "API token" (it must get the focus), type
 * `token` and press Enter. Resolves with the answer to the form's POST.
 */
async function signInWithKeyboard(page: Page, token: string) {
  assert.equal(new URL(page.url()).pathname, "/signin");
  const field = page.getByLabel("API token");
  assert.equal(await field.getAttribute("type"), "password");
  for (let i = 0; i < 10 && !(await field.evaluate((el) => el === document.activeElement)); i++) {
    await page.keyboard.press("Tab");
  }
  assert.ok(
    await field.evaluate((el) => el === document.activeElement),
    "the API token field is reached with Tab",
  );
  await page.keyboard.type(token);
  const [answer] = await Promise.all([
    page.waitForResponse((r) => r.url() === `${base}/signin` && r.request().method() === "POST"),
    page.keyboard.press("Enter"),
  ]);
  await page.waitForLoadState();
  return answer;
}

/** Opens the incident signed out: the console sends to sign-in, which returns to the incident. */
async function openIncidentSigningIn(context: BrowserContext, who: string): Promise<Page> {
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  await page.goto(`${base}/incidents/${INCIDENT}`);
  assert.equal(page.url(), `${base}/signin?next=${encodeURIComponent(`/incidents/${INCIDENT}`)}`);
  const answer = await signInWithKeyboard(page, tokens[who]);
  assert.equal(answer.status(), 303);
  await page.waitForURL(`${base}/incidents/${INCIDENT}`);
  return page;
}

test("token sign-in with the keyboard returns to the incident, records a verdict under the signed-in name, and signs out", async () => {
  const context = await browser.newContext();
  const dialogs: string[] = [];
  context.on("dialog", async (d) => {
    dialogs.push(d.message());
    await d.dismiss();
  });
  try {
    const page = await openIncidentSigningIn(context, "olga");
    const errors = watchErrors(page);
    assert.match(
      (await page.textContent("form.signed-in")) ?? "",
      /Signed in as olga \(operator\)/,
    );
    assert.equal(await page.locator("#verdict-by").count(), 0, "no name to type when signed in");
    assert.equal(await page.locator("#ack-by").count(), 0);
    const session = (await context.cookies(base)).find((c) => c.name === SESSION_COOKIE);
    assert.equal(session?.httpOnly, true);

    // The verdict: choose with the arrow keys, type the texts, submit with Enter.
    await tabTo(page, "#verdict-kind");
    const select = page.getByRole("combobox", { name: "Verdict" });
    assert.equal(await select.evaluate((el) => el === document.activeElement), true);
    for (let i = 0; i < 5 && (await page.inputValue("#verdict-kind")) !== "false_positive"; i++) {
      await page.keyboard.press("ArrowDown");
    }
    assert.equal(await page.inputValue("#verdict-kind"), "false_positive");
    await page.keyboard.press("Tab");
    assert.ok(await focused(page, "#verdict-cause"));
    await page.keyboard.type(HOSTILE);
    await page.keyboard.press("Tab");
    assert.ok(await focused(page, "#verdict-note"));
    await page.keyboard.type(`note ${HOSTILE}`);
    await page.keyboard.press("Tab");
    assert.ok(await focused(page, 'form.verdict button[type="submit"]'));
    await Promise.all([
      page.waitForResponse(
        (r) => r.url().endsWith(`/incidents/${INCIDENT}/verdict`) && r.status() === 303,
      ),
      page.keyboard.press("Enter"),
    ]);
    await page.waitForSelector('#verdict-state[data-verdict="false_positive"]', {
      timeout: 10_000,
    });
    assert.equal(await page.textContent("#verdict-state .who"), "olga");
    // Shown as text: no element came from what was typed (CSP aside, nothing to run).
    assert.equal(await page.textContent("#verdict-state .cause"), HOSTILE);
    assert.equal(await page.textContent("#verdict-state .note"), `note ${HOSTILE}`);
    assert.equal(await page.locator("#verdict-state script").count(), 0);
    assert.ok((await page.content()).includes("&lt;script&gt;alert(1)&lt;/script&gt;"));
    await checkAccessibility(page, "Incident signed in");

    // Sign out with the keyboard: back to the sign-in page, and the incident asks again.
    await tabTo(page, "form.signed-in button");
    assert.equal(await page.textContent("form.signed-in button"), "Sign out");
    await Promise.all([page.waitForURL(`${base}/signin`), page.keyboard.press("Enter")]);
    assert.equal(
      (await context.cookies(base)).some((c) => c.name === SESSION_COOKIE),
      false,
      "the session cookie is gone",
    );
    await page.goto(`${base}/incidents/${INCIDENT}`);
    assert.equal(new URL(page.url()).pathname, "/signin");
    assert.deepEqual(dialogs, [], "no script ran");
    assert.deepEqual(errors, [], "the sign-in and console pages load cleanly");
  } finally {
    await context.close();
  }
});

test("token sign-in as a viewer shows the incident without the acknowledge and verdict forms", async () => {
  const context = await browser.newContext();
  try {
    const page = await openIncidentSigningIn(context, "victor");
    assert.match(
      (await page.textContent("form.signed-in")) ?? "",
      /Signed in as victor \(viewer\)/,
    );
    assert.equal(await page.locator("form.verdict").count(), 0);
    assert.equal(await page.locator("form.ack").count(), 0);
    const main = (await page.textContent("main")) ?? "";
    assert.match(
      main,
      /Giving a verdict needs the operator role; you are signed in as victor \(viewer\)/,
    );
    assert.match(main, /Acknowledging needs the operator role/);
  } finally {
    await context.close();
  }
});

test("token names cannot carry markup: the tokens file refuses one", async () => {
  await assert.rejects(
    addToken(backend.tokensFile!, { name: HOSTILE, role: "viewer" }),
    /entry 2\.name: must be 1-100 of/,
  );
});

test("token sign-in with a wrong token shows the error and sets no cookie", async () => {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    await page.goto(`${base}/signin?next=%2Fsilences`);
    await checkAccessibility(page, "Sign in");
    const answer = await signInWithKeyboard(page, "not-a-token-anyone-has");
    assert.equal(answer.status(), 401);
    assert.equal(new URL(page.url()).pathname, "/signin");
    assert.match(
      (await page.getByRole("alert").textContent()) ?? "",
      /That token is not valid \(unknown, removed or expired\)/,
    );
    assert.deepEqual(await context.cookies(base), []);
    // The form still goes back where the person was headed.
    assert.equal(await page.inputValue('input[name="next"]'), "/silences");
  } finally {
    await context.close();
  }
});
