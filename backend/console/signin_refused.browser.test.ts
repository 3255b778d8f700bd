// The sign-in page in Chromium after a wrong token or an ended session: the token field has the focus and the message as its description.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { type ServerType, serve } from "@hono/node-server";
import type { Browser, Page } from "playwright-core";
import { freePort } from "../_test/free_port.ts";
import { createBackendApp } from "../app.ts";
import { createAuth } from "../auth/auth.ts";
import { addToken } from "../auth/token_file.ts";
import { openTokenStore } from "../auth/token_store.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";
import { launchChromium, tabTo } from "./_browser_checks.ts";

let server: ServerType;
let base: string;
let browser: Browser;
let db: TestDatabase;
let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "signin-refused-"));
  const file = join(dir, "tokens.json");
  assert.ok(await addToken(file, { name: "olga", role: "operator" }));
  db = await testTargets()[0].open();
  const auth = createAuth({
    mode: "token",
    tokens: await openTokenStore({ path: file, checkEveryMs: 0 }),
  });
  const app = createBackendApp({ database: db, auth });
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  server = await new Promise<ServerType>((resolve) => {
    const s = serve({ fetch: app.fetch, port, hostname: "127.0.0.1" }, () => resolve(s));
  });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  await db?.dispose();
  await rm(dir, { recursive: true, force: true });
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
