// Stored text in Chromium at a laptop's 1366 px: long names wrap inside the page, and a right-to-left override stays in its own name.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Browser, Page } from "playwright-core";
import { post } from "../alerts/_fixtures.ts";
import { incidentAlert } from "../incidents/_fixtures.ts";
import { launchChromium, tabTo, watchErrors } from "./_browser_checks.ts";
import { type ConsoleInProcess, serveConsole } from "./_console_in_process.ts";

const RLO = "\u202E";
/** 125 characters, as STREAM_ID_PATTERN allows, with no place to break a line. */
const LONG_STREAM = `line-${"a".repeat(120)}`;
/** 253 characters (the alert contract allows 256). */
const LONG_SENSOR = `TI_${"x".repeat(250)}`;

let backend: ConsoleInProcess;
let base: string;
let browser: Browser;

before(async () => {
  backend = await serveConsole();
  ({ base } = backend);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await backend?.close();
});

/** The page's width against the window's: nothing pushes it sideways. */
async function fitsWidth(page: Page, where: string) {
  const m = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    view: innerWidth,
  }));
  assert.ok(m.scroll <= m.view, `${where}: ${m.scroll} px wide in a ${m.view} px window`);
}

/** Where each character of the `<time>` in `selector` is drawn, in the text's order. */
function timeCharacters(page: Page, selector: string) {
  return page.$eval(`${selector} time`, (time) => {
    const text = time.firstChild as Text;
    const range = document.createRange();
    return [...text.data].flatMap((ch, i) => {
      range.setStart(text, i);
      range.setEnd(text, i + 1);
      const { x, y } = range.getBoundingClientRect();
      return ch === " " ? [] : [{ ch, x, y }];
    });
  });
}

/**
 * Each character right of the one before it on its line: the time reads as written, not
 * reversed (a narrow cell may wrap it at its space).
 */
async function readsInOrder(page: Page, selector: string) {
  const chars = await timeCharacters(page, selector);
  assert.ok(chars.length >= 19, `${selector}: a whole time`);
  for (let i = 1; i < chars.length; i++) {
    if (chars[i].y !== chars[i - 1].y) continue;
    assert.ok(
      chars[i].x > chars[i - 1].x,
      `${selector}: "${chars[i].ch}" is drawn left of "${chars[i - 1].ch}" (${chars.map((c) => c.ch).join("")})`,
    );
  }
}

/** The stored texts below that begin with a right-to-left override. */
const OVERRIDDEN = ["Ana", "valve", "checked", "r".repeat(300), "back early"].map((t) => RLO + t);

/**
 * Every right-to-left override is isolated (`<bdi>`, or an element styled `unicode-bidi:
 * isolate`) or ends its line's block with the stored text it begins: otherwise it runs on into the
 * words and times written after it.
 */
async function overridesIsolated(page: Page, where: string) {
  const loose = await page.evaluate(
    ({ rlo, values }) => {
      const found: string[] = [];
      const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        if (!node.textContent?.includes(rlo)) continue;
        let block: Element | null = null;
        let isolated = false;
        for (let el = node.parentElement; el; el = el.parentElement) {
          // Blocks are isolated too (unicode-bidi: isolate on td, p, div...), but the words
          // around the text share its block: only an inline isolate between them counts.
          const style = getComputedStyle(el);
          if (!style.display.startsWith("inline")) {
            block = el;
            break;
          }
          if (style.unicodeBidi.includes("isolate") || style.unicodeBidi === "plaintext") {
            isolated = true;
            break;
          }
        }
        if (isolated) continue;
        const text = block?.textContent?.trim() ?? "";
        const rest = text.slice(text.indexOf(rlo));
        if (values.includes(rest)) continue;
        found.push(`<${block?.tagName.toLowerCase()}> ${text.slice(0, 80)}`);
      }
      return found;
    },
    { rlo: RLO, values: OVERRIDDEN },
  );
  assert.deepEqual(loose, [], `${where}: text with a right-to-left override not isolated`);
}

test("a 125-character stream, a 253-character sensor and names with a right-to-left override keep every page in the window and every time in order", async () => {
  const by = `${RLO}Ana`;
  const alert = incidentAlert({
    incidentId: crypto.randomUUID(),
    event: "opened",
    start: new Date().toISOString(),
    streamId: LONG_STREAM,
    sensors: [
      { idx: 7, severity: 20, name: LONG_SENSOR },
      { idx: 8, severity: 10 },
    ],
  });
  const id = alert.incident_id;
  assert.equal((await fetch(`${base}/api/v1/alert`, post(alert))).status, 201);
  const verdict = { verdict: "false_positive", by, cause: `${RLO}valve` };
  assert.equal((await fetch(`${base}/api/v1/incidents/${id}/verdict`, post(verdict))).status, 201);
  const ack = { by, note: `${RLO}checked` };
  assert.equal((await fetch(`${base}/api/v1/incidents/${id}/ack`, post(ack))).status, 201);
  const silence = {
    matchers: { stream: LONG_STREAM, sensors: [LONG_SENSOR] },
    ends_at: new Date(Date.now() + 3_600_000).toISOString(),
    reason: `${RLO}${"r".repeat(300)}`,
    created_by: by,
  };
  assert.equal((await fetch(`${base}/api/v1/silences`, post(silence))).status, 201);
  // A second one, expired by the same name: "expired by … at <time>: …" on the Silences page.
  const over = await fetch(`${base}/api/v1/silences`, post({ ...silence, reason: "pump 3" }));
  const overId = (await over.json()).silence.silence_id;
  const expire = { ...post({ by, reason: `${RLO}back early` }), method: "DELETE" };
  const expired = await fetch(`${base}/api/v1/silences/${overId}`, expire);
  assert.equal(expired.status, 200, await expired.text());

  // An earlier incident on the same sensors, judged with an override in its cause: the incident's
  // "Similar past incidents" row reads "false positive (cause) by name".
  const earlier = incidentAlert({
    incidentId: crypto.randomUUID(),
    event: "opened",
    start: new Date(Date.now() - 7_200_000).toISOString(),
    streamId: LONG_STREAM,
    sensors: [
      { idx: 7, severity: 20, name: LONG_SENSOR },
      { idx: 8, severity: 10 },
    ],
  });
  assert.equal((await fetch(`${base}/api/v1/alert`, post(earlier))).status, 201);
  const judged = await fetch(
    `${base}/api/v1/incidents/${earlier.incident_id}/verdict`,
    post(verdict),
  );
  assert.equal(judged.status, 201);

  const page = await browser.newPage({ locale: "en-US", viewport: { width: 1366, height: 768 } });
  const errors = watchErrors(page);
  await page.goto(`${base}/`);
  await fitsWidth(page, "Now");
  await overridesIsolated(page, "Now");

  // To the incident by keyboard, as a person would.
  await tabTo(page, `tr[data-incident="${id}"] a`);
  await Promise.all([page.waitForURL(`${base}/incidents/${id}`), page.keyboard.press("Enter")]);
  await fitsWidth(page, "Incident");
  await overridesIsolated(page, "Incident");
  assert.equal(await page.locator("table.similar tbody tr").count(), 1, "the earlier incident");
  await readsInOrder(page, "#ack-state");
  await readsInOrder(page, "#verdict-state");
  await readsInOrder(page, '.timeline li[data-event="acknowledged"]');

  await page.goto(`${base}/silences`);
  await fitsWidth(page, "Silences");
  await overridesIsolated(page, "Silences");
  await readsInOrder(page, `#expired-silences tr[data-silence="${overId}"] td:last-child`);
  for (const path of ["/quality", "/overview?period=1h"]) {
    await page.goto(`${base}${path}`);
    await fitsWidth(page, path);
    await overridesIsolated(page, path);
  }
  assert.deepEqual(errors, []);
  await page.close();
});
