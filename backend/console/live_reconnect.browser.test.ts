// The Now page's live rows in Chromium across a lost connection (what changed meanwhile is caught up, a row that left the lists included), and the focus when its row leaves.
import assert from "node:assert/strict";
import { connect, createServer, type Server, type Socket } from "node:net";
import { after, before, test } from "node:test";
import { type ServerType, serve } from "@hono/node-server";
import type { Browser, Page } from "playwright-core";
import { freePort } from "../_test/free_port.ts";
import { post } from "../alerts/_fixtures.ts";
import { createBackendApp } from "../app.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";
import { incidentAlert } from "../incidents/_fixtures.ts";
import { launchChromium, tabTo, watchErrors } from "./_browser_checks.ts";
import { utc } from "./format.ts";

/** A TCP relay in front of the backend whose connections can be cut: a network blip. */
function startRelay(port: number) {
  const sockets = new Set<Socket>();
  let down = false;
  const server: Server = createServer((client) => {
    if (down) return void client.destroy();
    const upstream = connect(port, "127.0.0.1");
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {});
    }
    client.pipe(upstream).pipe(client);
  });
  return {
    server,
    /** Cuts every connection and refuses new ones until `restore()`. */
    cut() {
      down = true;
      for (const s of sockets) s.destroy();
    },
    restore() {
      down = false;
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

let db: TestDatabase;
let app: ReturnType<typeof createBackendApp>;
let server: ServerType;
let relay: ReturnType<typeof startRelay>;
let base: string;
let browser: Browser;

before(async () => {
  db = await testTargets()[0].open();
  app = createBackendApp({ database: db });
  const port = await freePort();
  server = await new Promise<ServerType>((resolve) => {
    const s = serve({ fetch: app.fetch, port, hostname: "127.0.0.1" }, () => resolve(s));
  });
  relay = startRelay(port);
  await new Promise<void>((resolve) => relay.server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(relay.server.address() as { port: number }).port}`;
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await relay?.close();
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  await db?.dispose();
});

/** Stores the engine's alert for an incident that started `start`; `resolved` ends it. */
async function alertFor(id: string, start: string, event: "opened" | "resolved") {
  const alert = incidentAlert({
    incidentId: id,
    event,
    start,
    at: event === "resolved" ? 600 : 0,
    sensors: [{ idx: 4242, severity: 20 }],
  });
  assert.equal((await app.request("/api/v1/alert", post(alert))).status, 201);
}

/** The incident ids of a table's rows, in order. */
function rowsOf(page: Page, table: "open-incidents" | "resolved-incidents") {
  return page.$$eval(`#${table} tr[data-incident]`, (rows) =>
    rows.map((r) => (r as HTMLElement).dataset.incident),
  );
}

test("after a lost connection the Now page drops the row of an incident that resolved meanwhile and left the lists", async () => {
  // Started two hours ago: once resolved, neither list shows it (resolved: the last hour only).
  const early = new Date(Date.now() - 2 * 3_600_000).toISOString();
  const [leaving, staying] = [crypto.randomUUID(), crypto.randomUUID()];
  await alertFor(leaving, early, "opened");
  await alertFor(staying, new Date(Date.now() - 3_600_000 * 3).toISOString(), "opened");
  const page = await browser.newPage({ locale: "en-US" });
  const errors = watchErrors(page);
  try {
    await page.goto(`${base}/`);
    await page.waitForSelector('#live-status[data-live="true"]', { timeout: 15_000 });
    assert.deepEqual(await rowsOf(page, "open-incidents"), [leaving, staying]);
    // A keyboard user reaches the row's link: the row is there to be used.
    await tabTo(page, `#open-incidents tr[data-incident="${leaving}"] a`);

    // The connection drops (Wi-Fi, VPN, a laptop lid) and meanwhile the incident resolves: the
    // stream is down, so no message about it reaches the page.
    relay.cut();
    await page.waitForSelector('#live-status[data-live="false"]', { timeout: 30_000 });
    await alertFor(leaving, early, "resolved");
    const opened = new Date().toISOString();
    const fresh = crypto.randomUUID();
    await alertFor(fresh, opened, "opened");

    relay.restore();
    await page.waitForSelector('#live-status[data-live="true"]', { timeout: 60_000 });
    // Caught up as a reload would show it: the new one in, the resolved one out of both lists.
    await page.waitForFunction(
      ([gone, added]) =>
        !document.querySelector(`#open-incidents tr[data-incident="${gone}"]`) &&
        document.querySelector(`#open-incidents tr[data-incident="${added}"]`) !== null,
      [leaving, fresh],
      { timeout: 15_000 },
    );
    assert.deepEqual(await rowsOf(page, "open-incidents"), [fresh, staying]);
    assert.ok(!(await rowsOf(page, "resolved-incidents")).includes(leaving));
    const reloaded = await browser.newPage();
    await reloaded.goto(`${base}/`);
    assert.deepEqual(await rowsOf(reloaded, "open-incidents"), [fresh, staying]);
    await reloaded.close();
    // The connection cut is a failed request of the stream only (watchErrors leaves those out).
    assert.deepEqual(
      errors.filter((e) => !e.includes("ERR_")),
      [],
    );
  } finally {
    await page.close();
  }
});

test("when the row holding the focus leaves the Now page's list, the focus goes to the next row's link, else to the list's heading, and the status says which incident left", async () => {
  // Started hours ago: once resolved, neither list shows them. The last is older than every
  // other row of this file's tests, so it is the Open table's last row.
  const starts = [2.5, 2.6, 10].map((h) => new Date(Date.now() - h * 3_600_000).toISOString());
  const [first, second, last] = starts.map(() => crypto.randomUUID());
  for (const [i, id] of [first, second, last].entries()) await alertFor(id, starts[i], "opened");
  const page = await browser.newPage({ locale: "en-US" });
  const errors = watchErrors(page);
  const focused = () =>
    page.evaluate(() => {
      const a = document.activeElement;
      return a?.tagName === "A" ? a.getAttribute("href") : (a?.id ?? a?.tagName);
    });
  const leaves = async (id: string) => {
    await page.waitForFunction(
      (gone) => !document.querySelector(`tr[data-incident="${gone}"]`),
      id,
      { timeout: 15_000 },
    );
    return page.textContent("#live-status");
  };
  try {
    await page.goto(`${base}/`);
    await page.waitForSelector('#live-status[data-live="true"]', { timeout: 15_000 });
    await tabTo(page, `#open-incidents tr[data-incident="${first}"] a`);

    await alertFor(first, starts[0], "resolved");
    const said = await leaves(first);
    assert.equal(await focused(), `/incidents/${second}`, "the next row's link");
    assert.equal(said, `Incident ${utc(starts[0])} on default left this list.`);
    assert.equal(await page.getAttribute("#live-status", "data-live"), "true", "still live");

    await page.focus(`#open-incidents tr[data-incident="${last}"] a`);
    await alertFor(last, starts[2], "resolved");
    assert.equal(await leaves(last), `Incident ${utc(starts[2])} on default left this list.`);
    assert.equal(await focused(), "open-heading", "no next row: the list's heading");
    assert.equal(await page.getAttribute("#open-heading", "tabindex"), "-1");
    // From there the keyboard goes on into the list, not from the top of the page.
    await page.keyboard.press("Tab");
    assert.equal(await focused(), await page.getAttribute("#open-incidents tbody a", "href"));
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
  }
});
