// Chromium against the backend in-process and a real engine: of two silent streams, one is retired from the Health page by keyboard alone, shown under Retired streams, then watched again; each row's controls have names of their own.
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { type ServerType, serve } from "@hono/node-server";
import type { Browser, Page } from "playwright-core";
import { jsonFrame } from "../../engine/_test/engine_harness.ts";
import { trainedRegistry } from "../../engine/_test/registry_engine.ts";
import { waitFor } from "../../engine/_test/wait_for.ts";
import { createBackendApp } from "../app.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";
import {
  checkAccessibility,
  launchChromium,
  submitWithEnter,
  tabTo,
  watchErrors,
} from "./_browser_checks.ts";
import { createEngineMonitor } from "./engine_monitor.ts";

// Two silent streams: two rows of the same controls, which a screen reader must tell apart.
const STREAM = "line-retire";
const OTHER = "line-other";

describe("retiring a silent stream in the console", () => {
  const reg = trainedRegistry([{ features: 8, name: "kiln", frames: 300 }]);
  let db: TestDatabase;
  let server: ServerType | undefined;
  let browser: Browser;
  let base: string;

  before(async () => {
    // The shortest stale limit the engine takes: a second.
    const { url } = await reg.start({ INCIDENT_STALE_MS: "1000" });
    db = await testTargets()[0].open();
    const app = createBackendApp({
      database: db,
      engine: createEngineMonitor({ engineUrl: url(""), timeoutMs: 5000 }),
    });
    const port = await new Promise<number>((resolve) => {
      server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, (info: AddressInfo) =>
        resolve(info.port),
      );
    });
    base = `http://127.0.0.1:${port}`;
    const [kiln] = reg.models;
    for (const stream of [STREAM, OTHER]) {
      for (let i = 0; i < 3; i++) {
        const res = await fetch(url("/data-enqueue"), {
          method: "POST",
          body: jsonFrame(kiln.featureNames, kiln.normalFrame(i), { stream_id: stream }),
        });
        assert.equal(res.status, 202, await res.text());
      }
    }
    await waitFor(async () => {
      const page = await (await fetch(`${base}/status`)).text();
      return (
        [STREAM, OTHER].every((s) => page.includes(`action="/streams/${s}/retire"`)) || undefined
      );
    }, "both streams listed silent");
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    await db?.dispose();
  });

  /** The names of the form controls in `main`, as Chromium's accessibility tree gives them. */
  async function controlNames(page: Page): Promise<string[]> {
    const snapshot = await page.locator("main").ariaSnapshot();
    return [...snapshot.matchAll(/- '?(textbox|button) "([^"]*)"/g)].map((m) => `${m[1]} ${m[2]}`);
  }

  /** No two controls share a name, and each stream's form names its stream and action. */
  async function assertNamed(page: Page, rows: { stream: string; act: "retire" | "watch" }[]) {
    const names = await controlNames(page);
    assert.deepEqual(
      names.filter((n, i) => names.indexOf(n) !== i),
      [],
      "no two controls share a name",
    );
    for (const { stream, act } of rows) {
      const which = act === "retire" ? `retire ${stream}` : `watch ${stream} again`;
      const button = act === "retire" ? `Retire: ${stream}` : `Watch again: ${stream}`;
      for (const name of [
        `textbox Why (${which})`,
        `textbox Your name (${which})`,
        `button ${button}`,
      ]) {
        assert.ok(names.includes(name), `${name} not among:\n${names.join("\n")}`);
      }
    }
  }

  test("a silent stream is retired by keyboard on the Health page, listed under Retired streams, and watched again, each row's controls named apart", async () => {
    const page = await browser.newPage({ locale: "en-US", viewport: { width: 1280, height: 900 } });
    const errors = watchErrors(page);
    try {
      await page.goto(`${base}/status`);
      await checkAccessibility(page, "Health with two silent streams");
      await assertNamed(page, [
        { stream: STREAM, act: "retire" },
        { stream: OTHER, act: "retire" },
      ]);
      await tabTo(
        page,
        `#silent-streams form[action="/streams/${STREAM}/retire"] input[name=reason]`,
      );
      await page.keyboard.type(`line taken out <b>"for good"</b>`);
      await page.keyboard.press("Tab");
      await page.keyboard.type("Ana");
      await submitWithEnter(page);
      const retired = page.locator("#retired-streams");
      assert.match(
        (await retired.textContent()) ?? "",
        new RegExp(`${STREAM}[\\s\\S]*Ana[\\s\\S]*line taken out <b>"for good"</b>`),
      );
      const silent = (await page.locator("#silent-streams").textContent()) ?? "";
      assert.ok(!silent.includes(STREAM), "no longer among Streams silent");
      assert.ok(silent.includes(OTHER), "the other stays silent");
      await checkAccessibility(page, "Health with a retired stream");
      await assertNamed(page, [
        { stream: STREAM, act: "watch" },
        { stream: OTHER, act: "retire" },
      ]);

      await tabTo(page, "#retired-streams input[name=reason]");
      await page.keyboard.type("line back in service");
      await page.keyboard.press("Tab");
      await page.keyboard.type("Ben");
      await submitWithEnter(page);
      assert.equal(await page.locator("#retired-streams").count(), 0);
      const back = (await page.locator("#silent-streams").textContent()) ?? "";
      assert.ok(back.includes(STREAM) && back.includes(OTHER), "both silent again");
      assert.deepEqual(errors, []);
    } finally {
      await page.close();
    }
  });
});
