// Chromium (playwright-core) against a real backend process whose engine is a real HTTP stand-in: the Health page's link to a retraining's report, followed by keyboard.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Browser } from "playwright-core";
import { startBackend } from "../_test/backend_process.ts";
import {
  type EngineModelsStandIn,
  retrainReport,
  servedModels,
  startEngineModelsStandIn,
} from "../_test/engine_models_stand_in.ts";
import type { ServiceProcess } from "../_test/spawn_service.ts";
import { checkAccessibility, launchChromium, tabTo, watchErrors } from "./_browser_checks.ts";

const TOKEN = "engine-admin-token-for-report-tests";
const HOSTILE = '<img src=x onerror="window.pwned=1"> & <script>window.pwned=2</script>';
const MODEL = "featurewise_ocsvm";
const HELD = "2.4.0+0d1c2b3a4f5e";

let engine: EngineModelsStandIn;
let backend: ServiceProcess;
let browser: Browser;
let base: string;

before(async () => {
  const [pump, boiler] = servedModels();
  engine = await startEngineModelsStandIn({
    token: TOKEN,
    models: [
      {
        ...pump,
        versions: [...pump.versions, HELD],
        retrain: {
          every_h: 0,
          next_at: null,
          last: {
            started_at: "2026-11-24T09:30:00.000Z",
            finished_at: "2026-11-24T09:40:00.000Z",
            outcome: "decided",
            decision: "held",
            candidate_version: HELD,
            reasons: [HOSTILE],
          },
        },
      },
      boiler,
    ],
    reports: { [`${MODEL}@${HELD}`]: retrainReport(MODEL, HELD, pump.active_version, HOSTILE) },
  });
  ({ service: backend, base } = await startBackend({
    ENGINE_URL: engine.url,
    ADMIN_TOKEN: TOKEN,
  }));
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await backend?.stop("SIGTERM");
  await engine?.close();
});

test("the Health page's retraining links to the report, reached by keyboard, hostile reasons shown as text", async () => {
  const page = await browser.newPage({ locale: "en-US", viewport: { width: 1280, height: 900 } });
  const errors = watchErrors(page);
  try {
    await page.goto(`${base}/status`);
    await checkAccessibility(page, "Health");
    const href = `/models/${MODEL}/retrains/${encodeURIComponent(HELD)}`;
    await tabTo(page, `a.retrain-report[href="${href}"]`);
    await Promise.all([page.waitForURL(`${base}${href}`), page.keyboard.press("Enter")]);
    await checkAccessibility(page, "Retraining report");
    assert.ok(
      engine.requests.includes(
        `GET /models/${MODEL}/retrains/${encodeURIComponent(HELD)} Bearer ${TOKEN}`,
      ),
      "the backend asked the engine with its admin token",
    );
    assert.equal(
      (await page.textContent("h1"))?.replace(/\s+/g, " ").trim(),
      `Retraining ${MODEL}@${HELD}: held`,
    );
    assert.deepEqual(await page.$$eval("#reasons li", (lis) => lis.map((li) => li.textContent)), [
      HOSTILE,
    ]);
    assert.equal(await page.$$eval("main img, main script", (els) => els.length), 0);
    assert.equal(await page.evaluate(() => (window as { pwned?: number }).pwned), undefined);
    const headers = await page.$$eval("#retrain-models thead th", (ths) =>
      ths.map((th) => th.textContent),
    );
    assert.deepEqual(headers, ["Measure", "Active 2.3.0+9fa2419cba78", `Candidate ${HELD}`]);
    assert.equal(await page.textContent("#activated"), "no");
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
  }
});
