// The console's top navigation in Chromium at 400, 768 and 1366 px with a long signed-in name: no link breaks inside a word, the header fits the window.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { type ServerType, serve } from "@hono/node-server";
import type { Browser } from "playwright-core";
import { freePort } from "../_test/free_port.ts";
import { createBackendApp } from "../app.ts";
import { createAuth } from "../auth/auth.ts";
import { addToken } from "../auth/token_file.ts";
import { openTokenStore } from "../auth/token_store.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";
import { launchChromium } from "./_browser_checks.ts";

/** A signed-in name with no place to break a line. */
const LONG_NAME = `Maximiliana-${"x".repeat(70)}-Featherstonehaugh`;

let server: ServerType;
let base: string;
let browser: Browser;
let db: TestDatabase;
let dir: string;
let token: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "top-nav-"));
  const file = join(dir, "tokens.json");
  token = (await addToken(file, { name: LONG_NAME, role: "operator" }))!;
  assert.ok(token);
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

test("the top navigation keeps each link on one line at 400, 768 and 1366 px with a long signed-in name", async () => {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(`${base}/signin`);
    await page.fill("#signin-token", token);
    await Promise.all([page.waitForURL(`${base}/`), page.press("#signin-token", "Enter")]);
    for (const width of [400, 768, 1366]) {
      await page.setViewportSize({ width, height: 800 });
      const m = await page.evaluate(() => {
        const range = document.createRange();
        const words = [
          ...document.querySelectorAll(".top nav a, .top .brand, .top .signed-in button"),
        ].map((el) => {
          // The text's own width on one line, against the box it is drawn in.
          const probe = document.createElement("span");
          probe.style.whiteSpace = "nowrap";
          probe.style.font = getComputedStyle(el).font;
          probe.textContent = el.textContent;
          document.body.append(probe);
          const natural = probe.getBoundingClientRect().width;
          probe.remove();
          range.selectNodeContents(el);
          return {
            text: el.textContent ?? "",
            lines: new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size,
            width: el.getBoundingClientRect().width,
            natural,
          };
        });
        return {
          words,
          // The header's own width: the tables below may scroll at 400 px, the header does not.
          scroll: Math.max(
            ...[...document.querySelectorAll(".top, .top *")].map(
              (el) => el.getBoundingClientRect().right,
            ),
          ),
          name: document.querySelector(".top .signed-in strong")?.textContent ?? "",
        };
      });
      for (const w of m.words) {
        assert.equal(w.lines, 1, `${width} px: "${w.text}" is broken over ${w.lines} lines`);
        assert.ok(
          w.width + 0.5 >= w.natural,
          `${width} px: "${w.text}" is ${w.width} px wide, its text ${w.natural} px`,
        );
      }
      assert.ok(m.scroll <= width, `${width} px: the header reaches ${m.scroll} px`);
      assert.equal(m.name, LONG_NAME, "the whole name is there");
    }
  } finally {
    await context.close();
  }
});
