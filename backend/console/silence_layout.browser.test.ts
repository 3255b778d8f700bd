// Chromium (playwright-core) on the Silences page: the weekly recurrence's days and times laid out as pairs a person can read, wide and narrow.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Browser, Page } from "playwright-core";
import { launchChromium, watchErrors } from "./_browser_checks.ts";
import { type ConsoleInProcess, serveConsole } from "./_console_in_process.ts";

let consoleApp: ConsoleInProcess;
let browser: Browser;

before(async () => {
  consoleApp = await serveConsole();
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await consoleApp?.close();
});

interface Box {
  id: string;
  top: number;
  bottom: number;
  left: number;
  right: number;
}

/** The bounding box of each of `selectors`' elements, in the order given. */
async function boxes(page: Page, selectors: string[]): Promise<Box[]> {
  return page.evaluate(
    (all) =>
      all.map((s) => {
        const el = document.querySelector(s);
        if (!el) throw new Error(`no ${s}`);
        const r = el.getBoundingClientRect();
        return { id: s, top: r.top, bottom: r.bottom, left: r.left, right: r.right };
      }),
    selectors,
  );
}

/** Whether two boxes share a line: each one's vertical middle lies within the other. */
function sameLine(a: Box, b: Box): boolean {
  const middle = (x: Box) => (x.top + x.bottom) / 2;
  return middle(a) > b.top && middle(a) < b.bottom && middle(b) > a.top && middle(b) < a.bottom;
}

const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

for (const width of [1366, 400]) {
  test(`the weekly recurrence at ${width} px keeps each day's checkbox beside its name and each time below its label`, async () => {
    const page = await browser.newPage({ locale: "en-US", viewport: { width, height: 900 } });
    const errors = watchErrors(page);
    try {
      await page.goto(`${consoleApp.base}/silences`);
      for (const d of DAYS) {
        const [box, label] = await boxes(page, [
          `#silence-day-${d}`,
          `label[for="silence-day-${d}"]`,
        ]);
        assert.ok(
          sameLine(box, label),
          `${d}: checkbox and label on one line: ${JSON.stringify([box, label])}`,
        );
        assert.ok(box.right <= label.left, `${d}: the checkbox before its name`);
      }
      for (const t of ["from", "to"]) {
        const [label, input] = await boxes(page, [`label[for="silence-${t}"]`, `#silence-${t}`]);
        assert.ok(label.bottom <= input.top + 1, `${t}: the label above its field`);
        assert.ok(Math.abs(label.left - input.left) < 2, `${t}: label and field aligned`);
      }
      const [sunday, fromLabel, fromInput, toLabel] = await boxes(page, [
        'label[for="silence-day-sun"]',
        'label[for="silence-from"]',
        "#silence-from",
        'label[for="silence-to"]',
      ]);
      assert.ok(sunday.bottom <= fromLabel.top, "the times below the days");
      assert.ok(
        fromInput.bottom <= toLabel.top || fromInput.right <= toLabel.left,
        "From before To",
      );
      assert.equal(
        await page.evaluate(() => document.documentElement.scrollWidth),
        width,
        "no sideways scrolling",
      );
      const shot = process.env.SHOT_DIR;
      if (shot) {
        await page.locator("fieldset").screenshot({ path: `${shot}/fieldset-${width}.png` });
      }
      assert.deepEqual(errors, []);
    } finally {
      await page.close();
    }
  });
}
