// Chromium on the backend app in-process: with 40 silences holding (each sensor muted from the Quality page), the Now page's h1 and first incident are on the first screen.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Browser } from "playwright-core";
import { post } from "../alerts/_fixtures.ts";
import { incidentAlert } from "../incidents/_fixtures.ts";
import { launchChromium, watchErrors } from "./_browser_checks.ts";
import { type ConsoleInProcess, serveConsole } from "./_console_in_process.ts";

let backend: ConsoleInProcess;
let browser: Browser;

before(async () => {
  backend = await serveConsole();
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await backend?.close();
});

test("with 40 silences holding, the Now page's h1 and its first incident lie on the first 800 px", async () => {
  const { app, base } = backend;
  for (let i = 0; i < 40; i++) {
    const made = await app.request(
      "/api/v1/silences",
      post({
        matchers: { stream: "line-a", sensors: [`feature_${1000 + i}`] },
        ends_at: new Date(Date.now() + 7 * 86_400_000).toISOString(),
        reason: "muted from Quality: noisy",
        created_by: "Ana",
      }),
    );
    assert.equal(made.status, 201, await made.text());
  }
  const incident = crypto.randomUUID();
  const stored = await app.request(
    "/api/v1/alert",
    post(
      incidentAlert({
        incidentId: incident,
        event: "opened",
        start: new Date(Date.now() - 60_000).toISOString(),
        streamId: "line-b",
        sensors: [{ idx: 4, severity: 20 }],
      }),
    ),
  );
  assert.equal(stored.status, 201);

  const page = await browser.newPage({ locale: "en-US", viewport: { width: 1280, height: 800 } });
  const errors = watchErrors(page);
  try {
    await page.goto(`${base}/`);
    const at = await page.evaluate(
      (id) => ({
        h1: document.querySelector("h1")?.getBoundingClientRect().bottom ?? Infinity,
        row:
          document.querySelector(`tr[data-incident="${id}"]`)?.getBoundingClientRect().bottom ??
          Infinity,
        banner: document.querySelector(".silence-banner")?.textContent?.replace(/\s+/g, " ") ?? "",
      }),
      incident,
    );
    assert.ok(at.h1 <= 800, `the h1 ends at ${at.h1} px`);
    assert.match(at.banner, /^ ?40 silences hold now/);
    assert.ok(at.row <= 800, `the first incident's row ends at ${at.row} px`);
    // The rest of the silences one Tab away, on the Silences page.
    const more = page.locator('.silence-banner a[href="/silences"]');
    assert.match((await more.textContent()) ?? "", /^and \d+ more/);
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
  }
});
