import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Browser, Page } from "playwright-core";
import { startBackend } from "../_test/backend_process.ts";
import { freePort } from "../_test/free_port.ts";
import type { ServiceProcess } from "../_test/spawn_service.ts";
import { post } from "../alerts/_fixtures.ts";
import { incidentAlert } from "../incidents/_fixtures.ts";
import { checkAccessibility, launchChromium, tabTo, watchErrors } from "./_browser_checks.ts";

const TOKEN = "quality-console-token-for-tests";
const STREAM = "line-a";
// A sensor name with markup and a glob character: shown as text, silenced as exactly itself.
const VALVE = "valve <b>7</b>*";
const HOSTILE_NOTE = "<script>window.pwned=1</script> checked on site";

let backend: ServiceProcess;
let browser: Browser;
let base: string;

/** Stores an incident opened now on STREAM flagging `sensors`; answers its id. */
async function incident(sensors: { idx: number; name?: string }[]): Promise<string> {
  const alert = incidentAlert({
    incidentId: crypto.randomUUID(),
    event: "opened",
    start: new Date().toISOString(),
    streamId: STREAM,
    sensors: sensors.map((s, n) => ({ ...s, severity: 20 - n })),
  });
  const res = await fetch(`${base}/api/v1/alert`, post(alert));
  assert.equal(res.status, 201, await res.text());
  return alert.incident_id;
}

/** Gives a verdict through the real API with the console token. */
async function verdict(id: string, kind: string) {
  const res = await fetch(
    `${base}/api/v1/incidents/${id}/verdict`,
    post({ verdict: kind, by: "Setup" }, { authorization: `Bearer ${TOKEN}` }),
  );
  assert.equal(res.status, 201, await res.text());
}

async function silences(): Promise<Record<string, unknown>[]> {
  const res = await fetch(`${base}/api/v1/silences`);
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()).silences;
}

before(async () => {
  ({ service: backend, base } = await startBackend({
    ENGINE_URL: `http://127.0.0.1:${await freePort()}`,
    CONSOLE_TOKEN: TOKEN,
  }));
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await backend?.stop("SIGTERM");
});

/**
 * Presses Enter on the focused control and waits for the page it leads to: a new document (also
 * when it is the same address: waiting for the address alone would return at once, on the old
 * page), then its heading (not every subresource: under a loaded CI machine the load event came
 * after 30 s once).
 */
async function submit(page: Page, url: string | RegExp) {
  await Promise.all([
    page.waitForNavigation({ url, waitUntil: "domcontentloaded", timeout: 60_000 }),
    page.keyboard.press("Enter"),
  ]);
  await page.waitForSelector("h1");
}

const focusedText = (page: Page) => page.evaluate(() => document.activeElement?.textContent);

test("a verdict given by keyboard shows in the list and on the incident; Quality counts it and mutes a noisy sensor", async () => {
  // Two false positives flag the valve and feature_4242, one more only feature_4242; one true
  // positive; the last incident is judged in the browser.
  const judged = [
    await incident([{ idx: 4242 }, { idx: 7, name: VALVE }]),
    await incident([{ idx: 4242 }]),
    await incident([{ idx: 4242 }, { idx: 7, name: VALVE }]),
    await incident([{ idx: 17 }]),
  ];
  for (const id of judged.slice(0, 3)) await verdict(id, "false_positive");
  await verdict(judged[3], "true_positive");
  const open = await incident([{ idx: 17 }, { idx: 4242 }]);

  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = watchErrors(page);
  await page.goto(`${base}/`);
  await checkAccessibility(page, "Now");
  const cell = `tr[data-incident="${open}"] td.verdict`;
  assert.equal(await page.textContent(cell), "none yet");
  assert.equal(
    await page.textContent(`tr[data-incident="${judged[3]}"] td.verdict`),
    "true positive",
  );

  // To the incident by keyboard, then the console token, then the verdict.
  await tabTo(page, `a[href="/incidents/${open}"]`);
  await submit(page, `${base}/incidents/${open}`);
  await checkAccessibility(page, "Incident");
  assert.equal(await page.getAttribute("#verdict-state", "data-verdict"), "none");
  await tabTo(page, "details summary");
  await page.keyboard.press("Enter");
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement?.id), "console-token");
  await page.keyboard.type(TOKEN);
  // Back on the incident, which says the token was stored (and starts the focus there).
  await submit(page, `${base}/incidents/${open}?token=stored`);
  await page.waitForFunction(() => document.activeElement?.id === "console-token-stored");

  await tabTo(page, "#verdict-kind");
  // Typing a letter picks the first option starting with it, as in any select.
  await page.keyboard.type("f");
  assert.equal(await page.inputValue("#verdict-kind"), "false_positive");
  await page.keyboard.press("Tab");
  await page.keyboard.type("condensate on the <b>probe</b>");
  await page.keyboard.press("Tab");
  await page.keyboard.type(HOSTILE_NOTE);
  await page.keyboard.press("Tab");
  await page.keyboard.type("Browser Test");
  await page.keyboard.press("Tab");
  assert.equal(await focusedText(page), "Record verdict");
  await submit(page, `${base}/incidents/${open}?done=verdict`);
  await page.waitForFunction(() => document.activeElement?.id === "verdict-done");
  const state = await page.waitForSelector('#verdict-state[data-verdict="false_positive"]');
  const stated = (await state.textContent()) ?? "";
  assert.match(stated, /^false positive by Browser Test at /);
  assert.ok(stated.includes("cause: condensate on the <b>probe</b>"), stated);
  assert.ok(stated.includes(HOSTILE_NOTE), "the note is shown as text");
  assert.equal(await page.evaluate(() => (window as { pwned?: number }).pwned), undefined);
  assert.equal(await page.$("#verdict-state b, #verdict-state script"), null);
  // Still there after a reload: it is stored.
  await page.reload();
  assert.equal(await page.getAttribute("#verdict-state", "data-verdict"), "false_positive");
  await page.goto(`${base}/`);
  assert.equal(await page.textContent(cell), "false positive");

  // To the Quality page by its navigation link.
  await tabTo(page, 'nav a[href="/quality"]');
  await submit(page, `${base}/quality`);
  await checkAccessibility(page, "Quality");
  const total = (name: string) => page.textContent(`#quality-totals [data-total="${name}"]`);
  assert.equal(await total("incidents"), "5");
  assert.equal(await total("judged"), "5");
  assert.equal(await total("false_positive"), "4");
  assert.equal(await total("false_positive_share"), "80%");
  const thisWeek = page.locator("#quality-weekly tbody tr").last();
  assert.equal(await thisWeek.locator('[data-count="false_positive"]').textContent(), "4");
  assert.equal(await thisWeek.locator('[data-count="true_positive"]').textContent(), "1");
  assert.equal(await thisWeek.locator('[data-count="incidents"]').textContent(), "5");
  const stream = page.locator(`#quality-streams tr[data-stream="${STREAM}"]`);
  assert.equal(await stream.locator('[data-count="false_positive_share"]').textContent(), "80%");
  const sensor = page.locator('#quality-sensors tr[data-feature-idx="4242"]');
  assert.equal(await sensor.locator('[data-count="false_positive"]').textContent(), "4");
  const noisy = await page.$$eval("#quality-noisy tbody tr", (trs) =>
    trs.map((tr) => [tr.querySelector("th")?.textContent, tr.children[2].textContent]),
  );
  assert.deepEqual(noisy, [
    ["feature_4242", "4"],
    [VALVE, "2"],
    ["feature_17", "1"],
  ]);
  assert.equal(await page.$("#quality-noisy th b"), null, "the sensor name is text");

  // Each row's controls are named for their row, as the browser computes the names.
  for (const [label, id] of [
    ["For", "#mute-1-for"],
    ["Reason", "#mute-1-reason"],
    ["Your name", "#mute-1-by"],
  ]) {
    const named = page.getByLabel(`${label} (mute ${VALVE} on ${STREAM})`, { exact: true });
    assert.equal(await named.count(), 1, label);
    assert.equal(await named.evaluate((el, s) => el.matches(s), id), true, label);
  }

  // Mute the valve by keyboard: first with a blank reason (refused, nothing stored), then for real.
  assert.deepEqual(await silences(), []);
  await tabTo(page, "#mute-1-for");
  await page.keyboard.type("7");
  assert.equal(await page.inputValue("#mute-1-for"), "7d");
  await page.keyboard.press("Tab");
  await page.keyboard.press("Control+A");
  await page.keyboard.type("   ");
  await page.keyboard.press("Tab");
  await page.keyboard.type("Browser Test");
  await page.keyboard.press("Tab");
  assert.equal(await focusedText(page), "Mute this sensor");
  await submit(page, `${base}/quality/mute`);
  assert.match(
    (await page.textContent("#mute-error")) ?? "",
    /Nothing was muted: “Reason” must be/,
  );
  // The focus starts on the message, beside the form; the field it is about is marked.
  await page.waitForFunction(() => document.activeElement?.id === "mute-error");
  assert.equal(await page.getAttribute("#mute-1-reason", "aria-invalid"), "true");
  assert.equal(await page.getAttribute("#mute-1-reason", "aria-describedby"), "mute-error");
  // Said in the valve's row, beside its form, which kept the choice and the name typed.
  const valveRow = page.locator(`#quality-noisy tr[data-feature-idx="7"]`);
  assert.equal(await valveRow.locator("#mute-error").count(), 1);
  assert.equal(await page.inputValue("#mute-1-for"), "7d");
  assert.equal(await page.inputValue("#mute-1-by"), "Browser Test");
  await checkAccessibility(page, "Quality, mute refused");
  assert.deepEqual(await silences(), []);
  // The refusal is a 400 page, which Chromium reports on its console; that one is expected.
  assert.deepEqual(errors.splice(0), [
    "console: Failed to load resource: the server responded with a status of 400 (Bad Request)",
  ]);

  // Only the reason is typed again: the rest is as it was.
  await tabTo(page, "#mute-1-reason");
  await page.keyboard.press("Control+A");
  await page.keyboard.type("probe <i>recalibrated</i> on Monday");
  await page.keyboard.press("Tab");
  await page.keyboard.press("Tab");
  assert.equal(await focusedText(page), "Mute this sensor");
  await submit(page, /\/quality\?weeks=12&silence=/);
  // What was done takes the focus, so a screen reader says it and the keyboard starts there.
  await page.waitForFunction(() => document.activeElement?.id === "mute-done");
  const done = (await page.textContent("#mute-done")) ?? "";
  assert.ok(done.includes(`Muted ${VALVE.replace("*", "\\*")} on stream ${STREAM} until`), done);
  assert.ok(done.includes("by Browser Test: probe <i>recalibrated</i> on Monday"), done);
  await checkAccessibility(page, "Quality after muting");

  // The silence, through the real API: scoped to the stream and exactly that sensor, 7 days.
  const [silence] = await silences();
  assert.equal(silence.silence_id, await page.getAttribute("#mute-done", "data-silence"));
  assert.deepEqual(silence.matchers, { stream: STREAM, sensors: ["valve <b>7</b>\\*"] });
  assert.equal(silence.reason, "probe <i>recalibrated</i> on Monday");
  assert.equal(silence.created_by, "Browser Test");
  assert.equal(
    Date.parse(silence.ends_at as string) - Date.parse(silence.starts_at as string),
    7 * 86_400_000,
  );
  assert.equal(silence.state, "active");
  assert.equal(await page.evaluate(() => (window as { pwned?: number }).pwned), undefined);
  assert.deepEqual(errors, []);
  await page.close();
});
