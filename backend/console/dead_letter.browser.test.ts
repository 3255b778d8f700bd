// Chromium (playwright-core) against a real backend process delivering to a real receiver: a dead letter re-sent from the Health page by keyboard only.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { Browser } from "playwright-core";
import { startBackend } from "../_test/backend_process.ts";
import { type ServiceProcess, waitFor } from "../_test/spawn_service.ts";
import { post } from "../alerts/_fixtures.ts";
import { incidentAlert } from "../incidents/_fixtures.ts";
import { type Receiver, startReceiver } from "../notify/_test_receiver.ts";
import { checkAccessibility, launchChromium, tabTo, watchErrors } from "./_browser_checks.ts";

const HOSTILE = '<img src=x onerror="window.pwned=1"> receiver fixed';

let receiver: Receiver;
let backend: ServiceProcess;
let browser: Browser;
let base: string;
let dir: string;
let refusing = true;

before(async () => {
  receiver = await startReceiver();
  // No retry fixes a 400: the message is a dead letter after its first try.
  receiver.answer = () => (refusing ? { status: 400, body: "unknown channel" } : { status: 200 });
  dir = await mkdtemp(join(tmpdir(), "dead-letter-browser-"));
  const config = join(dir, "notify.json");
  await writeFile(
    config,
    JSON.stringify({ routes: [{ name: "pager", webhook: { url: `${receiver.url}/pager` } }] }),
  );
  ({ service: backend, base } = await startBackend({ NOTIFY_CONFIG: config }));
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await backend?.stop("SIGTERM");
  await receiver?.close();
  await rm(dir, { recursive: true, force: true });
});

test("a dead letter is re-sent from the Health page with the keyboard only, under its webhook-id, and audited", async () => {
  const incident = crypto.randomUUID();
  const stored = await fetch(
    `${base}/api/v1/alert`,
    post(
      incidentAlert({
        incidentId: incident,
        start: new Date(Date.now() - 60_000).toISOString(),
        streamId: "press-1",
        event: "opened",
        sensors: [{ idx: 4, severity: 12 }],
      }),
    ),
  );
  assert.equal(stored.status, 201);
  const messageId = await waitFor(async () => {
    const page = await (await fetch(`${base}/status`)).text();
    return page.match(/data-message-id="(msg_[0-9a-f]{32})"/)?.[1];
  }, "the dead letter on the Health page");
  const [refused] = receiver.on("/pager");

  const page = await browser.newPage({ locale: "en-US", viewport: { width: 1280, height: 900 } });
  const errors = watchErrors(page);
  try {
    await page.goto(`${base}/status`);
    await checkAccessibility(page, "Health");
    assert.equal(
      await page.getAttribute(
        `tr[data-message-id="${messageId}"] button[type="submit"]`,
        "aria-label",
      ),
      `Re-send: opened of incident ${incident.slice(0, 8)} to pager`,
    );
    refusing = false;
    await tabTo(page, `#resend-${messageId}-reason`);
    await page.keyboard.type(HOSTILE);
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement?.id), `resend-${messageId}-by`);
    await page.keyboard.type("Ana");
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement?.textContent?.trim()), "Re-send");
    await Promise.all([
      page.waitForURL(`${base}/status?resent=${messageId}`),
      page.keyboard.press("Enter"),
    ]);
    // The page says what came of it, and the focus starts there.
    assert.equal(await page.evaluate(() => document.activeElement?.id), "resend-notice");
    assert.match((await page.textContent("#resend-notice")) ?? "", /is pending again/);
    await checkAccessibility(page, "Health after the re-send");
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
  }

  await receiver.until(
    (rs) => rs.some((r) => r.path === "/pager" && r.answered === 200),
    "the re-sent message delivered",
  );
  const delivered = receiver.on("/pager").filter((r) => r.answered === 200);
  assert.equal(delivered.length, 1);
  assert.equal(delivered[0].id, messageId);
  assert.equal(delivered[0].id, refused.id, "the same webhook-id as the dead letter's try");
  assert.equal(delivered[0].body, refused.body);
  const audit = await (
    await fetch(`${base}/api/v1/audit?action=notification.resend&target=notification:${messageId}`)
  ).json();
  assert.equal(audit.events.length, 1);
  assert.equal(audit.events[0].actor.name, "Ana");
  assert.deepEqual(audit.events[0].detail, { reason: HOSTILE });
});

test("a refused re-send says why in a sentence of its own, then its stable code", async () => {
  const unknown = `msg_${"0".repeat(32)}`;
  const res = await fetch(`${base}/notifications/${unknown}/retry`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ reason: "receiver fixed", by: "Ana" }),
  });
  assert.equal(res.status, 404);
  const message = (await res.text()).match(/<p role="alert" id="message"[^>]*>(.*?)<\/p>/s)?.[1];
  assert.equal(
    message?.replace(/<[^>]+>/g, ""),
    `no message ${unknown}. Nothing changed. (not_found)`,
  );
});
