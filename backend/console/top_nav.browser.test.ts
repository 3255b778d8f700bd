// The console's top navigation in Chromium at 400, 768 and 1366 px with a long signed-in name: no link breaks inside a word, the header fits the window.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Browser } from "playwright-core";
import { launchChromium } from "./_browser_checks.ts";
import { type ConsoleInProcess, serveConsole } from "./_console_in_process.ts";

/** A signed-in name with no place to break a line. */
const LONG_NAME = `Maximiliana-${"x".repeat(70)}-Featherstonehaugh`;

let backend: ConsoleInProcess;
let base: string;
let browser: Browser;
let token: string;

before(async () => {
  backend = await serveConsole({ people: [[LONG_NAME, "operator"]] });
  ({ base } = backend);
  token = backend.tokens[LONG_NAME];
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await backend?.close();
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
