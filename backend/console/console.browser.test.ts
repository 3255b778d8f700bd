import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { Browser, Page } from "playwright-core";
import { servedModels, startEngineModelsStandIn } from "../_test/engine_models_stand_in.ts";
import { freePort } from "../_test/free_port.ts";
import { NODE_TS, type ServiceProcess, spawnService } from "../_test/spawn_service.ts";
import { post } from "../alerts/_fixtures.ts";
import { incidentAlert } from "../incidents/_fixtures.ts";
import { checkAccessibility, launchChromium, tabTo, watchErrors } from "./_browser_checks.ts";

const FEATURE = 4242;
// Where the screenshot goes: the committed one is made with CONSOLE_SCREENSHOT=backend/console/screenshot.png.
const SCREENSHOT = process.env.CONSOLE_SCREENSHOT;

let backend: ServiceProcess;
let engine: ServiceProcess;
let browser: Browser;
let dataDir: string;
let base: string;

before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "console-browser-"));
  const [backendPort, enginePort] = [await freePort(), await freePort()];
  base = `http://127.0.0.1:${backendPort}`;
  backend = spawnService([...NODE_TS, "backend/main.ts"], {
    HOST: "127.0.0.1",
    PORT: String(backendPort),
    DATABASE_URL: "",
    ENGINE_URL: `http://127.0.0.1:${enginePort}`,
    SIMULATOR_RATE_HZ: "0",
  });
  engine = spawnService([...NODE_TS, "engine/main.ts"], {
    APP_HOST: "127.0.0.1",
    APP_PORT: String(enginePort),
    NESTJS_URL: base,
    DEFAULT_DEVICE: "cpu",
    DATA_DIR: dataDir,
  });
  await backend.waitForLog((l) => l.msg === "backend listening", 60_000);
  await engine.waitForLog((l) => l.msg === "engine ready", 120_000);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await engine?.stop("SIGTERM");
  await backend?.stop("SIGTERM");
  await rm(dataDir, { recursive: true, force: true });
});

test("an injected anomaly appears live in the console, charts its readings, and is acknowledged for good", async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = watchErrors(page);
  await page.goto(`${base}/`);
  await checkAccessibility(page, "Now");
  // The page's script connected its event stream; mark the document to prove there is no reload.
  await page.waitForSelector('#live-status[data-live="true"]', { timeout: 15_000 });
  await page.evaluate(() => {
    (window as unknown as { marker: number }).marker = 42;
  });
  // Keyboard focus starts at the skip link.
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement?.className), "skip");

  const res = await fetch(`${base}/data/stream`, {
    method: "POST",
    body: JSON.stringify({
      rate_hz: 5,
      duration_s: 30,
      anomaly_every_s: 0,
      anomalies: [
        { at_frame: 10, kind: "level_shift", features: [FEATURE], duration: 25, magnitude: 25 },
      ],
    }),
  });
  assert.equal(res.status, 202);

  const row = await page.waitForSelector("#open-incidents tr[data-incident]", { timeout: 90_000 });
  assert.equal(await page.evaluate(() => (window as unknown as { marker: number }).marker), 42);
  assert.match((await row.textContent()) ?? "", new RegExp(`feature_${FEATURE}`));
  assert.equal(await page.isHidden("#open-incidents-empty"), true);
  const incidentId = await row.getAttribute("data-incident");

  await (await row.$("a"))!.click();
  await page.waitForURL(`${base}/incidents/${incidentId}`);
  await page.waitForSelector("h1");
  assert.match((await page.textContent("h1")) ?? "", /Incident on stream default/);
  await checkAccessibility(page, "Incident");
  assert.match((await page.textContent(".sensor h3")) ?? "", new RegExp(`feature_${FEATURE}`));
  // The real engine names the model that scored the alert, and its version.
  assert.match((await page.textContent("#incident-model")) ?? "", /^[A-Za-z0-9][\w.-]*@\S+$/);

  // The first chart is the injected sensor's, drawn on a canvas with its points (the red series).
  const canvas = await page.waitForSelector(".sensor .chart canvas", { timeout: 10_000 });
  const drawn = await canvas.evaluate((c: HTMLCanvasElement) => {
    const { data } = c.getContext("2d")!.getImageData(0, 0, c.width, c.height);
    let red = 0;
    let painted = 0;
    for (let i = 0; i < data.length; i += 4) {
      if (data[i + 3] > 0) painted++;
      if (data[i] > 150 && data[i + 1] < 90 && data[i + 2] < 90 && data[i + 3] > 200) red++;
    }
    return { width: c.width, height: c.height, painted, red };
  });
  assert.ok(drawn.width > 100 && drawn.height > 100, JSON.stringify(drawn));
  assert.ok(drawn.red > 50, `the sensor's points are drawn: ${JSON.stringify(drawn)}`);
  const values = JSON.parse((await page.getAttribute(".sensor .chart", "data-values"))!);
  assert.equal(values.length, 5);

  // Acknowledge with the keyboard only.
  await tabTo(page, "#ack-by", 80);
  await page.keyboard.type("Browser Test");
  await page.keyboard.press("Tab");
  await page.keyboard.type("level shift on <b>4242</b>, checked");
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), "Acknowledge");
  if (SCREENSHOT) await page.screenshot({ path: SCREENSHOT, fullPage: true });
  await Promise.all([
    page.waitForURL(`${base}/incidents/${incidentId}`),
    page.keyboard.press("Enter"),
  ]);
  await page.waitForSelector('#ack-state[data-acknowledged="true"]');

  await page.reload();
  const state = await page.waitForSelector('#ack-state[data-acknowledged="true"]');
  assert.match((await state.textContent()) ?? "", /Acknowledged by Browser Test/);
  // The note is shown as text, markup and all.
  assert.match((await state.textContent()) ?? "", /<b>4242<\/b>/);
  assert.match((await page.textContent(".timeline")) ?? "", /acknowledged by Browser Test/);

  // The other pages render with the same checks.
  for (const path of ["/overview?period=1h", "/status", "/"]) {
    await page.goto(`${base}${path}`);
    await checkAccessibility(page, path);
  }
  await page.goto(`${base}/status`);
  assert.equal(await page.getAttribute("#engine-health [data-ready]", "data-ready"), "ready");
  // The Database section: its size, and the default horizons the backend's prune at start ran under.
  assert.match((await page.textContent("#database-health")) ?? "", /Size[\d.]+ MB/);
  await waitForText(page, "/status", "#retention-horizons", "alerts 30 d");
  assert.equal(await page.getAttribute("#last-prune", "data-error"), "false");
  // The real engine's GET /models (no ADMIN_TOKEN here): its one model with the active version.
  const served = await page.$$("#engine-models tbody tr[data-model]");
  assert.equal(served.length, 1);
  assert.match((await served[0].textContent()) ?? "", /\(active\)/);
  await page.goto(`${base}/overview?period=1h`);
  assert.ok(await page.$(`.heatmap a[href="/incidents/${incidentId}"]`), "heatmap cell links it");
  assert.deepEqual(errors, []);
  await page.close();
});

test("a stopped machine is shown as stopped on Health and Now, resolves the open incident and opens none, and goes when it runs again", async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  try {
    const errors = watchErrors(page);
    const openBefore = await openIncidents();
    const res = await fetch(`${base}/data/stream`, {
      method: "POST",
      body: JSON.stringify({
        rate_hz: 5,
        duration_s: 28,
        anomaly_every_s: 0,
        stops: [{ at_frame: 10, duration: 100 }],
      }),
    });
    assert.equal(res.status, 202);
    // The stop starts two seconds in and lasts twenty (room for a slow host to look at both
    // pages while it lasts): the Health page lists the stream, and Now says so too.
    await waitForText(page, "/status", "#machine-off", "default");
    await checkAccessibility(page, "Health with a stopped machine");
    await waitForText(page, "/", "#machine-off", "default");
    await checkAccessibility(page, "Now with a stopped machine");
    // Running again: the section says so, and the stop opened no incident.
    await waitForText(page, "/status", "#machine-off-none", "running");
    // A stop opens nothing, and resolves what was open on the stream.
    assert.deepEqual(await openIncidents(), [], "a stop is not an anomaly");
    for (const id of openBefore) {
      const res = await fetch(`${base}/api/v1/incidents/${id}`);
      assert.ok(((await res.json()) as { resolved_at: string | null }).resolved_at, id);
    }
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
  }
});

test("a dead running sensor: the stream is listed as stopped, Now says it reads as running and names the sensor to check, and it goes when the sensor reads again", async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  try {
    const errors = watchErrors(page);
    const openBefore = await openIncidents();
    const res = await fetch(`${base}/data/stream`, {
      method: "POST",
      body: JSON.stringify({
        rate_hz: 10,
        duration_s: 30,
        anomaly_every_s: 0,
        stops: [{ at_frame: 10, duration: 200, kind: "sensor" }],
      }),
    });
    assert.equal(res.status, 202);
    // The drive's sensor reads 0 from frame 10 while the plant runs on: listed as stopped, and
    // once a stretch of its frames read as running (30 frames, 3 s here), called out.
    await waitForText(page, "/", "#machine-off-doubt", "1 stopped machine reads as running");
    const row = (await page.textContent("#machine-off")) ?? "";
    assert.match(row, /default/);
    assert.match(row, /Reads as running since .*check its running sensor feature_\d+/);
    await checkAccessibility(page, "Now with a stop in doubt");
    await waitForText(page, "/status", "#machine-off", "Reads as running");
    // The sensor reads again (frame 210): running, and nothing was opened meanwhile.
    await waitForText(page, "/status", "#machine-off-none", "running");
    assert.deepEqual(await openIncidents(), openBefore);
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
  }
});

/** Reloads `path` until `selector`'s text holds `text` (the page is rendered server-side). */
async function waitForText(page: Page, path: string, selector: string, text: string) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    await page.goto(`${base}${path}`);
    const found = await page.$(selector);
    if (found && ((await found.textContent()) ?? "").includes(text)) return;
    if (Date.now() > deadline) assert.fail(`${selector} never showed ${JSON.stringify(text)}`);
    await page.waitForTimeout(500);
  }
}

async function openIncidents(): Promise<string[]> {
  const res = await fetch(`${base}/api/v1/incidents?state=open`);
  return ((await res.json()) as { incidents: { incident_id: string }[] }).incidents.map(
    (i) => i.incident_id,
  );
}

test("a live update of the row a keyboard user is on keeps their focus on it", async () => {
  const incidentId = crypto.randomUUID();
  const start = new Date().toISOString();
  const opened = incidentAlert({
    incidentId,
    event: "opened",
    start,
    sensors: [{ idx: 9, severity: 12 }],
  });
  assert.equal((await fetch(`${base}/api/v1/alert`, post(opened))).status, 201);
  const page = await browser.newPage();
  const errors = watchErrors(page);
  await page.goto(`${base}/`);
  await page.waitForSelector('#live-status[data-live="true"]', { timeout: 15_000 });
  const link = `tr[data-incident="${incidentId}"] a`;
  await tabTo(page, link);
  await page.evaluate((id) => {
    (document.querySelector(`tr[data-incident="${id}"]`) as HTMLElement).dataset.stale = "yes";
  }, incidentId);
  const updated = incidentAlert({
    incidentId,
    event: "updated",
    start,
    at: 5,
    sensors: [
      { idx: 9, severity: 30 },
      { idx: 10, severity: 11 },
    ],
  });
  assert.equal((await fetch(`${base}/api/v1/alert`, post(updated))).status, 201);
  await page.waitForSelector(`tr[data-incident="${incidentId}"]:not([data-stale])`, {
    timeout: 15_000,
  });
  assert.equal(await page.locator(`tr[data-incident="${incidentId}"]`).count(), 1);
  assert.equal(
    await page.evaluate((s) => document.activeElement?.matches(s) ?? false, link),
    true,
    "the new row's link has the focus",
  );
  assert.deepEqual(errors, []);
  await page.close();
});

test("a sensor's typical range is drawn as a shaded band behind its readings", async () => {
  // The committed model may carry no typical ranges; an alert as the contract allows has one.
  const alert = incidentAlert({
    incidentId: crypto.randomUUID(),
    event: "opened",
    start: new Date().toISOString(),
    sensors: [{ idx: 77, severity: 14, value: 40, name: 'sensor "<b>77</b>"' }],
  });
  const stored = await fetch(`${base}/api/v1/alert`, post(alert));
  assert.equal(stored.status, 201);
  const page = await browser.newPage({ viewport: { width: 1000, height: 800 } });
  const errors = watchErrors(page);
  await page.goto(`${base}/incidents/${alert.incident_id}`);
  assert.equal(await page.textContent(".sensor h3"), 'sensor "<b>77</b>"');
  const canvas = await page.waitForSelector(".sensor .chart canvas");
  const pixels = await canvas.evaluate((c: HTMLCanvasElement) => {
    const { data } = c.getContext("2d")!.getImageData(0, 0, c.width, c.height);
    let band = 0;
    let red = 0;
    for (let i = 0; i < data.length; i += 4) {
      const [r, g, b, a] = [data[i], data[i + 1], data[i + 2], data[i + 3]];
      // The band: translucent green; the points: opaque red.
      if (a > 0 && a < 120 && g > r && g > b) band++;
      if (r > 150 && g < 90 && b < 90 && a > 200) red++;
    }
    return { band, red };
  });
  assert.ok(pixels.band > 500, `band drawn: ${JSON.stringify(pixels)}`);
  assert.ok(pixels.red > 50, `points drawn: ${JSON.stringify(pixels)}`);
  assert.deepEqual(errors, []);
  await page.close();
});

test("the Health page lists the engine's models, starts a retraining by keyboard, and an incident names its model, escaped, reached by keyboard", async () => {
  const token = "engine-admin-token-for-tests";
  const hostile = '<img src=x onerror="window.pwned=1">';
  const engineStandIn = await startEngineModelsStandIn({
    models: servedModels(`Ana ${hostile}`, `rolled forward <script>window.pwned=2</script>`),
    token,
  });
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  // Its own backend: ENGINE_URL is the stand-in, and ADMIN_TOKEN goes through the real config.
  const own = spawnService([...NODE_TS, "backend/main.ts"], {
    HOST: "127.0.0.1",
    PORT: String(port),
    DATABASE_URL: "",
    ENGINE_URL: engineStandIn.url,
    ADMIN_TOKEN: token,
    SIMULATOR_RATE_HZ: "0",
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  try {
    await own.waitForLog((l) => l.msg === "backend listening", 60_000);
    const errors = watchErrors(page);
    const incidentId = crypto.randomUUID();
    const alert = incidentAlert({
      incidentId,
      event: "opened",
      start: new Date().toISOString(),
      sensors: [{ idx: 5, severity: 11 }],
      model: { name: "boiler.v2", version: hostile },
    });
    assert.equal((await fetch(`${url}/api/v1/alert`, post(alert))).status, 201);

    await page.goto(`${url}/status`);
    await checkAccessibility(page, "Health with models");
    assert.ok(engineStandIn.requests.includes(`GET /models Bearer ${token}`));
    const rows = await page.$$eval("#engine-models tbody tr", (trs) =>
      trs.map((tr) => [...tr.children].map((c) => (c.textContent ?? "").trim())),
    );
    assert.deepEqual(rows[0].slice(0, 5), [
      "featurewise_ocsvm",
      "featurewise_ocsvm@2.3.0+9fa2419cba78",
      "2.2.0, 2.3.0+9fa2419cba78 (active)",
      "*",
      "3",
    ]);
    assert.equal(
      rows[0][5],
      `2.2.0 → 2.3.0+9fa2419cba78 by Ana ${hostile} at 2026-11-24 09:30:00Z: rolled forward <script>window.pwned=2</script>`,
    );
    assert.equal(rows[1][0], "boiler");

    // "Retrain now" by keyboard: the engine is asked, the page says so and lists the run running.
    await tabTo(page, 'button[aria-label="Retrain now: featurewise_ocsvm"]');
    await Promise.all([
      page.waitForURL(`${url}/status?retrain=featurewise_ocsvm`),
      page.keyboard.press("Enter"),
    ]);
    assert.match(
      (await page.textContent("#retrain-notice")) ?? "",
      /^\s*Retraining of featurewise_ocsvm started/,
    );
    await page.waitForFunction(() => document.activeElement?.id === "retrain-notice");
    assert.equal(
      await page.getAttribute(
        'tr[data-model="featurewise_ocsvm"] td[data-retrain]',
        "data-retrain",
      ),
      "running",
    );
    assert.deepEqual(
      engineStandIn.retrains.map((r) => [r.model, r.authorization]),
      [["featurewise_ocsvm", `Bearer ${token}`]],
    );
    await checkAccessibility(page, "Health after Retrain now");

    // From Now to the incident with the keyboard: its model version is text, not markup.
    await page.goto(`${url}/`);
    await tabTo(page, `a[href="/incidents/${incidentId}"]`, 80);
    await Promise.all([
      page.waitForURL(`${url}/incidents/${incidentId}`),
      page.keyboard.press("Enter"),
    ]);
    assert.equal(await page.textContent("#incident-model"), `boiler.v2@${hostile}`);
    await checkAccessibility(page, "Incident with a model");
    assert.equal(
      await page.evaluate(() => (window as unknown as { pwned?: number }).pwned),
      undefined,
    );
    assert.equal(await page.$("img"), null, "no element came from the version string");
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
    await own.stop("SIGTERM");
    await engineStandIn.close();
  }
});
