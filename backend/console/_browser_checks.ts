// Test helper: checks the console's browser tests share (the browser, errors, accessibility, keyboard reach, canvas colours).
import assert from "node:assert/strict";
import { type Browser, chromium, type ElementHandle, type Page } from "playwright-core";

/** Debian's Chromium (`apt-get install chromium`; .ci/run installs it when missing), headless. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
    ],
  });
}

/** Console errors, failed requests and uncaught exceptions of a page, collected as they happen. */
export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`console: ${m.text()}`);
  });
  page.on("pageerror", (e) => errors.push(`exception: ${e.message}`));
  page.on("requestfailed", (r) => {
    // The live stream is cut when the page navigates away: that is not an error.
    if (!r.url().endsWith("/events")) errors.push(`request failed: ${r.url()}`);
  });
  return errors;
}

/** Basic accessibility: one h1, no skipped heading level, every form control labelled. */
export async function checkAccessibility(page: Page, where: string) {
  const report = await page.evaluate(() => {
    const headings = [...document.querySelectorAll("h1, h2, h3, h4, h5, h6")].map((h) =>
      Number(h.tagName[1]),
    );
    const unlabelled = [...document.querySelectorAll("input, select, textarea")]
      .filter((el) => (el as HTMLInputElement).type !== "hidden")
      .filter(
        (el) => (el as HTMLInputElement).labels?.length === 0 && !el.getAttribute("aria-label"),
      )
      .map((el) => el.outerHTML);
    return { headings, unlabelled, lang: document.documentElement.lang, title: document.title };
  });
  assert.equal(report.headings.filter((h) => h === 1).length, 1, `${where}: one h1`);
  for (let i = 1; i < report.headings.length; i++) {
    assert.ok(report.headings[i] <= report.headings[i - 1] + 1, `${where}: heading levels skip`);
  }
  assert.deepEqual(report.unlabelled, [], `${where}: unlabelled controls`);
  assert.equal(report.lang, "en");
  assert.ok(report.title.length > 0);
}

/** Presses Tab until `selector` has the focus (at most `max` times): it is reachable by keyboard. */
export async function tabTo(page: Page, selector: string, max = 200) {
  for (let i = 0; i < max; i++) {
    await page.keyboard.press("Tab");
    if (await page.evaluate((s) => document.activeElement?.matches(s) ?? false, selector)) return;
  }
  assert.fail(`${selector} is not reachable with the Tab key`);
}

/**
 * Pixels of a canvas near an opaque colour (each channel within `tolerance`), with the mean x of
 * those pixels as a fraction of the canvas width (NaN when there are none).
 */
export async function colourPixels(
  canvas: ElementHandle<HTMLCanvasElement>,
  rgb: [number, number, number],
  tolerance = 40,
): Promise<{ count: number; meanX: number; width: number; height: number }> {
  return await canvas.evaluate(
    (c, [want, tol]) => {
      const { data } = c.getContext("2d")!.getImageData(0, 0, c.width, c.height);
      let count = 0;
      let sumX = 0;
      for (let i = 0; i < data.length; i += 4) {
        if (data[i + 3] < 200) continue;
        if (
          Math.abs(data[i] - want[0]) <= tol &&
          Math.abs(data[i + 1] - want[1]) <= tol &&
          Math.abs(data[i + 2] - want[2]) <= tol
        ) {
          count++;
          sumX += (i / 4) % c.width;
        }
      }
      return { count, meanX: sumX / count / c.width, width: c.width, height: c.height };
    },
    [rgb, tolerance] as const,
  );
}

/** Presses Enter on the focused control and waits for the page the form leads to. */
export async function submitWithEnter(page: Page): Promise<void> {
  await Promise.all([
    page.waitForNavigation({ waitUntil: "domcontentloaded", timeout: 60_000 }),
    page.keyboard.press("Enter"),
  ]);
  await page.waitForSelector("h1");
}

/** Waits until the focus is on `selector` (the console's script moves it once it has run). */
export async function focusOn(page: Page, selector: string): Promise<void> {
  await page.waitForFunction((s) => document.activeElement?.matches(s) ?? false, selector, {
    timeout: 10_000,
  });
}
