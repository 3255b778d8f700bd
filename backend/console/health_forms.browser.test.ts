// Chromium against a real backend process (engine stand-in, a receiver refusing every notification): the Health page's repeated forms have names of their own, and its facts stay readable at 320 and 400 px, as do a retraining report's.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { Browser, Page } from "playwright-core";
import { startBackend } from "../_test/backend_process.ts";
import {
  type EngineModelsStandIn,
  retrainReport,
  servedModels,
  startEngineModelsStandIn,
} from "../_test/engine_models_stand_in.ts";
import { type ServiceProcess, waitFor } from "../_test/spawn_service.ts";
import { post } from "../alerts/_fixtures.ts";
import { incidentAlert } from "../incidents/_fixtures.ts";
import { type Receiver, startReceiver } from "../notify/_test_receiver.ts";
import { launchChromium, watchErrors } from "./_browser_checks.ts";

const TOKEN = "engine-admin-token-for-health-forms";
const MODEL = "featurewise_ocsvm";
const HELD = "2.4.0+0d1c2b3a4f5e";

let receiver: Receiver;
let engine: EngineModelsStandIn;
let backend: ServiceProcess;
let browser: Browser;
let base: string;
let dir: string;
const incidents = [crypto.randomUUID(), crypto.randomUUID()];

before(async () => {
  receiver = await startReceiver();
  // No retry fixes a 400: each message is a dead letter after its first try.
  receiver.answer = () => ({ status: 400, body: "unknown channel" });
  dir = await mkdtemp(join(tmpdir(), "health-forms-browser-"));
  const config = join(dir, "notify.json");
  await writeFile(
    config,
    JSON.stringify({ routes: [{ name: "pager", webhook: { url: `${receiver.url}/pager` } }] }),
  );
  const [pump, boiler] = servedModels();
  engine = await startEngineModelsStandIn({
    token: TOKEN,
    models: [
      {
        ...pump,
        versions: [...pump.versions, HELD],
        retrain: {
          every_h: 24,
          next_at: "2026-11-25T02:00:00.000Z",
          last: {
            started_at: "2026-11-24T09:30:00.000Z",
            finished_at: "2026-11-24T09:40:00.000Z",
            outcome: "decided",
            decision: "held",
            candidate_version: HELD,
            reasons: ["falseAlarmFramesPer10k: 12 > 7.6"],
          },
        },
      },
      // Two models the engine retrains: two "Retrain now" forms.
      { ...boiler, layout: "registry", retrain: { every_h: 0, next_at: null } },
    ],
    reports: { [`${MODEL}@${HELD}`]: retrainReport(MODEL, HELD, pump.active_version) },
  });
  ({ service: backend, base } = await startBackend({
    ENGINE_URL: engine.url,
    ADMIN_TOKEN: TOKEN,
    NOTIFY_CONFIG: config,
  }));
  for (const id of incidents) {
    const stored = await fetch(
      `${base}/api/v1/alert`,
      post(
        incidentAlert({
          incidentId: id,
          start: new Date(Date.now() - 60_000).toISOString(),
          streamId: "press-1",
          event: "opened",
          sensors: [{ idx: 4, severity: 12 }],
        }),
      ),
    );
    assert.equal(stored.status, 201);
  }
  await waitFor(async () => {
    const page = await (await fetch(`${base}/status`)).text();
    return (page.match(/data-message-id="msg_/g) ?? []).length === 2 || undefined;
  }, "both dead letters on the Health page");
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await backend?.stop("SIGTERM");
  await engine?.close();
  await receiver?.close();
  await rm(dir, { recursive: true, force: true });
});

/** The names of the form controls in `main`, as Chromium's accessibility tree gives them. */
async function controlNames(page: Page): Promise<string[]> {
  const snapshot = await page.locator("main").ariaSnapshot();
  return [...snapshot.matchAll(/- '?(textbox|combobox|checkbox|button) "([^"]*)"/g)].map(
    (m) => `${m[1]} ${m[2]}`,
  );
}

test("the Health page's Re-send and Retrain forms have names of their own", async () => {
  const page = await browser.newPage({ locale: "en-US", viewport: { width: 1280, height: 900 } });
  const errors = watchErrors(page);
  try {
    await page.goto(`${base}/status`);
    const names = await controlNames(page);
    assert.deepEqual(
      names.filter((n, i) => names.indexOf(n) !== i),
      [],
      "no two controls share a name",
    );
    for (const id of incidents) {
      const which = `re-send opened of incident ${id.slice(0, 8)} to pager`;
      assert.ok(names.includes(`textbox Why (optional) (${which})`), names.join("\n"));
      assert.ok(names.includes(`textbox Your name (${which})`), names.join("\n"));
    }
    for (const model of [MODEL, "boiler"]) {
      assert.ok(names.includes(`textbox Why (optional) (retrain ${model})`), names.join("\n"));
      assert.ok(names.includes(`textbox Your name (retrain ${model})`), names.join("\n"));
    }
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
  }
});

test("the facts of Health and of a retraining report stay at least 10 characters wide at 320 and 400 px", async () => {
  const page = await browser.newPage({ locale: "en-US" });
  try {
    for (const width of [320, 400]) {
      await page.setViewportSize({ width, height: 800 });
      for (const path of ["/status", `/models/${MODEL}/retrains/${encodeURIComponent(HELD)}`]) {
        await page.goto(`${base}${path}`);
        const facts = await page.evaluate(() =>
          [...document.querySelectorAll(".facts dd")].map((dd) => {
            // 10ch in the value's own font.
            const probe = document.createElement("span");
            probe.style.font = getComputedStyle(dd).font;
            probe.style.whiteSpace = "nowrap";
            probe.textContent = "0".repeat(10);
            document.body.append(probe);
            const tenCh = probe.getBoundingClientRect().width;
            probe.remove();
            return {
              label: dd.previousElementSibling?.textContent?.trim() ?? "",
              width: dd.getBoundingClientRect().width,
              tenCh,
            };
          }),
        );
        assert.ok(facts.length > 0, `${width} px ${path}: facts`);
        if (path === "/status") {
          // The engine's, whose values (a URL, a reason) have no word breaks to spare.
          assert.ok(
            ["Address", "Readiness"].every((l) => facts.some((f) => f.label === l)),
            facts.map((f) => f.label).join(", "),
          );
        }
        for (const f of facts) {
          assert.ok(
            f.width >= f.tenCh,
            `${width} px ${path}: "${f.label}" is ${Math.round(f.width)} px wide, 10ch is ${Math.round(f.tenCh)} px`,
          );
        }
      }
    }
  } finally {
    await page.close();
  }
});
