// Chromium (playwright-core) against a real backend process and a real engine process: the Health page marks the versions that read other sensors, says beside the form why one is refused without "Start windows afresh", and activates it by keyboard with it, saying so.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Browser } from "playwright-core";
import { ADMIN_TOKEN, trainedRegistry } from "../../engine/_test/registry_engine.ts";
import { startBackend } from "../_test/backend_process.ts";
import type { ServiceProcess } from "../_test/spawn_service.ts";
import { post } from "../alerts/_fixtures.ts";
import {
  checkAccessibility,
  focusOn,
  launchChromium,
  tabTo,
  watchErrors,
} from "./_browser_checks.ts";

const HOSTILE = '<img src=x onerror="window.pwned=1"> & <script>window.pwned=2</script>';
const MARK = "(other sensors or window size)";

describe("the Health page's activation of a version that reads other sensors", () => {
  // Two versions of the same 8 sensors, one of 6.
  const reg = trainedRegistry([
    { features: 8, name: "kiln", frames: 300 },
    { features: 8, name: "kiln", frames: 360 },
    { features: 6, name: "kiln", frames: 300 },
  ]);
  let engineUrl: string;
  let backend: ServiceProcess;
  let browser: Browser;
  let base: string;

  before(async () => {
    engineUrl = (await reg.start()).url("");
    ({ service: backend, base } = await startBackend({
      ENGINE_URL: engineUrl,
      ADMIN_TOKEN,
    }));
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await backend?.stop("SIGTERM");
  });

  /** The engine's own listing of the model. */
  async function listed() {
    const res = await fetch(`${engineUrl}/models`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    return ((await res.json()) as { models: Record<string, unknown>[] }).models[0];
  }

  test("the version with other sensors is marked, and activating it by keyboard with the box ticked resets the windows", async () => {
    const [v1, v2, other] = reg.metas.map((m) => m.version);
    const page = await browser.newPage({ locale: "en-US", viewport: { width: 1280, height: 900 } });
    const errors = watchErrors(page);
    try {
      await page.goto(`${base}/status`);
      await checkAccessibility(page, "Health");
      const row = 'tr[data-model="kiln"]';
      const versions = (await page.textContent(`${row} td:nth-of-type(2)`)) ?? "";
      assert.ok(versions.includes(`${other} ${MARK}`), versions);
      assert.ok(!versions.includes(`${v2} ${MARK}`), "the same sensors are not marked");
      const options = await page.$$eval("#activate-kiln-version option", (os) =>
        os.map((o) => [o.getAttribute("value"), o.textContent]),
      );
      assert.deepEqual(options, [
        [v2, v2],
        [other, `${other} ${MARK}`],
      ]);
      // Labelled, and unticked until a person ticks it.
      assert.equal(
        await page.$eval("#activate-kiln-reset", (el) =>
          (el as HTMLInputElement).labels?.[0]?.textContent?.replace(/\s+/g, " ").trim(),
        ),
        "Start windows afresh (the version reads other sensors)",
      );
      assert.equal(await page.isChecked("#activate-kiln-reset"), false);

      // First without the box: the engine refuses, and the page says so beside the form, which
      // keeps what was typed, naming the box to tick (not the API's field).
      await tabTo(page, "#activate-kiln-version");
      await page.selectOption("#activate-kiln-version", other);
      await tabTo(page, "#activate-kiln-reason");
      await page.keyboard.type(HOSTILE);
      await tabTo(page, "#activate-kiln-by");
      await page.keyboard.type("Ana");
      await Promise.all([
        page.waitForNavigation({ waitUntil: "domcontentloaded", timeout: 60_000 }),
        page.keyboard.press("Enter"),
      ]);
      await focusOn(page, "#activate-error");
      const said = (await page.textContent("#activate-error")) ?? "";
      assert.match(said, /^Not activated: .*tick “Start windows afresh”.*Nothing changed\.$/s);
      assert.ok(!said.includes("reset_windows"), said);
      assert.equal(
        await page.$eval("#activate-error", (el) =>
          el.nextElementSibling?.matches("form.activate"),
        ),
        true,
        "beside the form",
      );
      assert.equal(await page.inputValue("#activate-kiln-version"), other);
      assert.equal(await page.inputValue("#activate-kiln-reason"), HOSTILE);
      assert.equal(await page.inputValue("#activate-kiln-by"), "Ana");
      assert.deepEqual(
        await page.$eval("#activate-kiln-reset", (el) => [
          el.getAttribute("aria-invalid"),
          el.getAttribute("aria-describedby"),
        ]),
        ["true", "activate-error"],
      );
      assert.equal(await page.$$eval("main img, main script", (els) => els.length), 0);
      await checkAccessibility(page, "Health, activation refused");
      assert.equal((await listed()).active_version, v1, "nothing changed");

      // Ticked, the same form (reason and name as typed) activates it; the page says so, focused.
      await tabTo(page, "#activate-kiln-reset");
      await page.keyboard.press("Space");
      assert.equal(await page.isChecked("#activate-kiln-reset"), true);
      await tabTo(page, "#activate-kiln-by");
      await Promise.all([
        page.waitForURL(`${base}/status?activated=kiln`, { timeout: 60_000 }),
        page.keyboard.press("Enter"),
      ]);
      await page.waitForSelector("h1");
      await focusOn(page, "#activate-notice");
      assert.equal(await page.getAttribute("#activate-notice", "role"), "status");
      assert.equal(
        (await page.textContent("#activate-notice"))?.replace(/\s+/g, " ").split(";")[0],
        `Activated: kiln scores with ${other} now`,
      );
      assert.equal(
        await page.getAttribute(`${row} [data-active-version]`, "data-active-version"),
        other,
      );
      const last = (await page.textContent(`${row} td:nth-of-type(5)`)) ?? "";
      assert.ok(last.includes(`${v1} → ${other} by Ana`), last);
      assert.ok(last.includes(HOSTILE), "the reason shown as text");
      assert.equal(await page.$$eval("main img, main script", (els) => els.length), 0);
      assert.equal(await page.evaluate(() => (window as { pwned?: number }).pwned), undefined);
      // Now the 8-sensor versions are the other ones.
      const after = (await page.textContent(`${row} td:nth-of-type(2)`)) ?? "";
      assert.ok(after.includes(`${v1} ${MARK}`) && after.includes(`${v2} ${MARK}`), after);
      // The refusal is a 409 page, which Chromium reports on its console; nothing else.
      assert.deepEqual(
        errors.filter((e) => !e.includes("status of 409")),
        [],
      );
    } finally {
      await page.close();
    }
    const model = await listed();
    assert.equal(model.active_version, other);
    assert.equal(model.n_features, 6);
  });

  test("activating the version already active answers unchanged and audits nothing", async () => {
    const other = reg.metas[2].version;
    const events = async () => {
      const res = await fetch(`${base}/api/v1/audit?action=model.activate`);
      return ((await res.json()) as { events: { detail: Record<string, unknown> }[] }).events;
    };
    const audited = async () => (await events()).length;
    const before = await audited();
    assert.equal(before, 1, "the switch above");
    assert.equal((await events())[0].detail.windows_reset, true, "the streams started afresh");
    const records = (await reg.registry.activations("kiln")).length;
    const res = await fetch(
      `${base}/api/v1/models/kiln/activate`,
      post({ version: other, by: "Ana", reason: "again" }),
    );
    assert.equal(res.status, 200);
    const answer = (await res.json()) as Record<string, unknown>;
    assert.deepEqual([answer.unchanged, answer.from, answer.version], [true, other, other]);
    assert.equal(await audited(), before, "nothing switched, nothing audited");
    assert.equal((await reg.registry.activations("kiln")).length, records, "nothing recorded");
  });
});
