import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { createLogger } from "../../telemetry/logger.ts";
import { startAlertSink } from "../_test/alert_sink.ts";
import { waitFor } from "../_test/wait_for.ts";
import { AlertDispatcher } from "./alert_dispatcher.ts";
import { createAlertSender } from "./alert_sender.ts";
import { Outbox } from "./outbox.ts";

const log = createLogger({ service: "engine", level: "silent" });
const records = (n: number) =>
  Array.from({ length: n }, () => {
    const id = crypto.randomUUID();
    return { id, body: JSON.stringify({ alert_id: id }) };
  });

/**
 * `timeoutMs`: long, so that a busy host's slow answer is no timeout and retry (a second request
 * for the alert); short only where the sink hangs on purpose.
 */
async function setup(
  t: { after: (fn: () => Promise<void>) => void },
  maxAlerts = 100,
  timeoutMs = 5000,
) {
  const dir = await mkdtemp(join(tmpdir(), "dispatch-"));
  const sink = await startAlertSink();
  const outbox = await Outbox.open({ dir });
  const send = createAlertSender({
    url: sink.url,
    maxRetries: 1,
    retryBaseMs: 5,
    retryMaxMs: 10,
    timeoutMs,
  });
  const options = { send, concurrency: 2, maxAlerts, roundBaseMs: 20, roundMaxMs: 50, log };
  const dispatcher = new AlertDispatcher({ outbox, ...options });
  t.after(async () => {
    dispatcher.close();
    await outbox.close().catch(() => {});
    await sink.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { dir, sink, outbox, dispatcher, options };
}

test("alertDispatcher delivers every alert once the backend recovers from being down", async (t) => {
  const { sink, outbox, dispatcher } = await setup(t);
  await sink.down();
  const batch = records(5);
  await dispatcher.submit(batch);
  assert.equal(outbox.size, 5);
  await waitFor(() => dispatcher.counts.exhausted >= 5, "a failed round per alert");
  await sink.up();
  await waitFor(() => outbox.size === 0, "the outbox to empty");
  assert.deepEqual(new Set(batch.map((r) => r.id)), sink.delivered);
  assert.equal(dispatcher.counts.delivered, 5);
});

test("alertDispatcher logs one warning when deliveries start failing and one line when they work again", async (t) => {
  const { sink, outbox, options } = await setup(t);
  const lines: { level: string; msg: string }[] = [];
  const logged = createLogger({
    service: "engine",
    level: "info",
    write: (line) => void lines.push(JSON.parse(line)),
  });
  const dispatcher = new AlertDispatcher({ ...options, outbox, log: logged });
  t.after(() => dispatcher.close());
  await sink.down();
  await dispatcher.submit(records(6));
  // Several rounds of every alert.
  await waitFor(() => dispatcher.counts.exhausted >= 18, "three failed rounds per alert");
  await sink.up();
  await waitFor(() => outbox.size === 0, "the outbox to empty");
  const about = lines.filter((l) => /alert delivery/.test(l.msg));
  assert.deepEqual(
    about.map((l) => [l.level, l.msg]),
    [
      ["warn", "alert delivery failing; alerts kept in the outbox and tried again in rounds"],
      ["info", "alert delivery works again"],
    ],
  );
});

test("alertDispatcher keeps alerts through a 500 storm and a hanging backend", async (t) => {
  const { sink, outbox, dispatcher } = await setup(t, 100, 300);
  sink.answer = 500;
  sink.script = ["hang", "hang"];
  const batch = records(4);
  await dispatcher.submit(batch);
  await waitFor(() => dispatcher.counts.exhausted >= 4, "failed rounds");
  assert.equal(outbox.size, 4);
  sink.answer = 201;
  await waitFor(() => outbox.size === 0, "the outbox to empty");
  assert.equal(sink.delivered.size, 4);
});

test("alertDispatcher parks a rejected alert in the outbox and redelivers it at the next start", async (t) => {
  const { dir, sink, outbox, dispatcher, options } = await setup(t);
  sink.script = [422];
  const [alert] = records(1);
  await dispatcher.submit([alert]);
  await waitFor(() => dispatcher.counts.rejected === 1, "the rejection");
  assert.equal(sink.requests.length, 1);
  assert.equal(outbox.size, 1);
  dispatcher.close();
  await outbox.close();
  const reopened = await Outbox.open({ dir });
  const next = new AlertDispatcher({ ...options, outbox: reopened });
  next.start();
  await waitFor(() => reopened.size === 0, "redelivery at start");
  assert.ok(sink.delivered.has(alert.id));
  next.close();
  await reopened.close();
});

test("alertDispatcher reports full when the outbox bound is reached", async (t) => {
  const { sink, dispatcher } = await setup(t, 3);
  await sink.down();
  await dispatcher.submit(records(2));
  assert.equal(dispatcher.full, false);
  await dispatcher.submit(records(1));
  assert.equal(dispatcher.full, true);
});

test("alertDispatcher reports full when the outbox holds OUTBOX_MAX_BYTES of alerts, whatever their count", async (t) => {
  const { sink, outbox, options } = await setup(t, 100);
  const dispatcher = new AlertDispatcher({ outbox, ...options, maxBytes: 3000 });
  t.after(() => dispatcher.close());
  await sink.down();
  const big = (n: number) =>
    Array.from({ length: n }, () => {
      const id = crypto.randomUUID();
      return { id, body: JSON.stringify({ alert_id: id, evidence: "x".repeat(1000) }) };
    });
  await dispatcher.submit(big(2));
  assert.equal(dispatcher.full, false);
  await dispatcher.submit(big(1));
  assert.equal(dispatcher.full, true, `${outbox.bytes} bytes held in ${outbox.size} alerts`);
  await sink.up();
  dispatcher.start();
  await waitFor(() => outbox.size === 0, "the outbox to empty");
  assert.equal(outbox.bytes, 0);
  assert.equal(dispatcher.full, false);
});

test("alertDispatcher drain stops at the deadline and leaves undelivered alerts kept", async (t) => {
  const { sink, outbox, dispatcher } = await setup(t, 100, 300);
  sink.answer = "hang";
  await dispatcher.submit(records(3));
  await dispatcher.drain(AbortSignal.timeout(100));
  assert.equal(outbox.size, 3);
});

test("alertDispatcher counts an alert the backend refuses and logs the refusal's reason", async (t) => {
  const { sink, outbox, options } = await setup(t);
  const lines: Record<string, unknown>[] = [];
  const logged = createLogger({
    service: "engine",
    level: "info",
    write: (line) => void lines.push(JSON.parse(line)),
  });
  const rejected: unknown[] = [];
  const metrics = {
    alertsFailed: { add() {} },
    alertsRejected: { add: (n: number, attributes: unknown) => rejected.push([n, attributes]) },
  };
  const dispatcher = new AlertDispatcher({
    ...options,
    outbox,
    log: logged,
    metrics: metrics as never,
  });
  t.after(() => dispatcher.close());
  sink.script = [401];
  await dispatcher.submit(records(1));
  await waitFor(() => dispatcher.counts.rejected === 1, "the rejection");
  assert.deepEqual(rejected, [[1, { status: 401 }]]);
  const line = lines.find((l) => String(l.msg).startsWith("backend rejected an alert"));
  assert.ok(line, JSON.stringify(lines));
  assert.equal(line.msg, "backend rejected an alert; kept in the outbox until restart");
  assert.equal(line.status, 401);
  assert.equal(line.reason, '{"error":"internal_error","message":"test"}');
});
