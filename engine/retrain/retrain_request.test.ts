// "Retrain now" under scale-out against a real nats-server: the replica's request is taken by exactly one of two workers' runners, refused while a run goes on, and withdrawn when no worker takes it.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { HttpError } from "../../contracts/error.ts";
import { NAME, plantFrames, trainInto } from "../../models/retrain/_test/plant_history.ts";
import { createLogger } from "../../telemetry/logger.ts";
import { waitFor } from "../_test/wait_for.ts";
import { type NatsServer, startNatsServer } from "../bus/_test/nats_server.ts";
import { NatsModelRegistry } from "../infer/nats_registry.ts";
import { ModelRegistry } from "../infer/registry.ts";
import type { RetrainChildOptions } from "./retrain_child.ts";
import { RetrainLeases } from "./retrain_lease.ts";
import { readRetrainRecord, writeRetrainRecord } from "./retrain_record.ts";
import { askSharedRetrain, pendingRetrainRequests } from "./retrain_request.ts";
import { RetrainScheduler } from "./retrain_scheduler.ts";
import { sharedRetrainRun } from "./shared_retrain.ts";

let server: NatsServer;
let nc: NatsConnection;
let root: string;

before(async () => {
  [server, root] = await Promise.all([startNatsServer(), mkdtemp(join(tmpdir(), "retrain-ask-"))]);
  nc = await connect({ servers: server.url });
  await trainInto(join(root, "v1"), plantFrames(600, 1), true);
});

after(async () => {
  await nc?.close();
  await server?.remove();
  await rm(root, { recursive: true, force: true });
});

/** A deployment `prefix` whose shared registry holds v1, active, and its retraining leases. */
async function deployment(prefix: string) {
  const registry = await NatsModelRegistry.open(nc, prefix);
  await registry.publishFromDisk(await new ModelRegistry(join(root, "v1")).resolve(NAME));
  // A TTL no stall of a busy host's test process outlasts: these tests hold leases, never lose them.
  const leases = await RetrainLeases.open(nc, prefix, { ttlMs: 6000 });
  return { registry, leases };
}

const isHttp = (status: number, code: string, message?: RegExp) => (error: unknown) =>
  error instanceof HttpError &&
  error.status === status &&
  error.code === code &&
  (!message || message.test(error.message));

test("a retraining asked for through the replica is taken by exactly one of two workers, whatever the last run, and refused while it runs", async () => {
  const { registry, leases } = await deployment("ASK1");
  // A run that finished just now: a scheduled round would be skipped, an asked one is not.
  const now = new Date().toISOString();
  await writeRetrainRecord(registry.kv, NAME, {
    last: {
      started_at: now,
      finished_at: now,
      outcome: "decided",
      decision: "held",
      reasons: [],
      worker: "a",
    },
  });
  let release = () => {};
  const mayEnd = new Promise<void>((resolve) => {
    release = resolve;
  });
  const children: string[] = [];
  const lines: Record<string, unknown>[] = [];
  const worker = (id: string) => {
    const log = createLogger({
      service: "engine",
      write: (l) => void lines.push({ ...JSON.parse(l), worker: id }),
    });
    return new RetrainScheduler({
      everyH: 0,
      models: () => [NAME],
      run: sharedRetrainRun({
        config: { RETRAIN_EVERY_H: 1, RETRAIN_PROMOTE: "auto" },
        env: { HISTORY_DIR: join(root, "history") },
        registry,
        leases: async () => leases,
        worker: id,
        log,
        // The CLI itself is tested with real history elsewhere; here: which worker runs it.
        async runChild(_o: RetrainChildOptions) {
          children.push(id);
          await mayEnd;
          return { outcome: "decided", decision: "held", reasons: ["nothing better"] };
        },
      }),
      requests: {
        pending: (models) => pendingRetrainRequests(registry.kv, models),
        everyMs: 20,
      },
      log,
    });
  };
  const workers = [worker("a"), worker("b")];
  for (const w of workers) w.start();
  try {
    const asked = { by: "ana", reason: "operating point moved", at: new Date().toISOString() };
    const run = await askSharedRetrain({ kv: registry.kv, leases, model: NAME, asked });
    assert.equal(run.outcome, "running");
    assert.deepEqual(run.requested, asked);
    assert.ok(run.worker === "a" || run.worker === "b", run.worker);
    assert.deepEqual(await pendingRetrainRequests(registry.kv, [NAME]), [], "the request taken");
    // While it runs every ask is refused, for this model or another.
    for (const model of [NAME, "mixer"]) {
      await assert.rejects(
        askSharedRetrain({ kv: registry.kv, leases, model, asked: { ...asked, by: "bo" } }),
        isHttp(409, "retrain_running", new RegExp(`worker ${run.worker} is retraining ${NAME}`)),
      );
    }
    await waitFor(() => children.length === 1, "the child to start");
    release();
    const record = await waitFor(async () => {
      const r = await readRetrainRecord(registry.kv, NAME);
      return r?.last.outcome === "decided" && r.last.requested ? r : undefined;
    }, "the run to be recorded");
    assert.equal(record.last.worker, run.worker);
    assert.deepEqual(record.last.requested, asked);
    assert.equal(record.last.started_at, run.started_at);
    assert.equal(record.last.decision, "held");
  } finally {
    release();
    await Promise.all(workers.map((w) => w.stop()));
  }
  // Stopped: whatever either runner had in flight has ended. One child ran, on the worker named.
  assert.deepEqual(children, [children[0]]);
  const decided = lines.filter((l) => l.msg === "requested retraining decided");
  assert.deepEqual(
    decided.map((l) => [l.worker, l.model]),
    [[children[0], NAME]],
  );
  // The other worker either never saw the request or found it taken: nothing recorded there.
  const other = children[0] === "a" ? workers[1] : workers[0];
  assert.equal(other.status(NAME).last, undefined);
});

test("a retraining no worker takes is withdrawn and refused with retrain_unavailable; a request left behind does not block", async () => {
  const { registry, leases } = await deployment("ASK2");
  // Left by a replica that died while waiting, an hour ago.
  const stale = { by: "gone", reason: "", at: new Date(Date.now() - 3_600_000).toISOString() };
  await registry.kv.put(`retrain_request.${NAME}`, JSON.stringify(stale));
  const asked = { by: "ana", reason: "", at: new Date().toISOString() };
  await assert.rejects(
    askSharedRetrain({ kv: registry.kv, leases, model: NAME, asked, timeoutMs: 300 }),
    isHttp(409, "retrain_unavailable", /no worker took the request to retrain plant8/),
  );
  assert.deepEqual(await pendingRetrainRequests(registry.kv, [NAME]), [], "withdrawn");
  // A request waiting (fresh) refuses the next ask, for any model.
  await registry.kv.put(`retrain_request.${NAME}`, JSON.stringify(asked));
  await assert.rejects(
    askSharedRetrain({ kv: registry.kv, leases, model: "mixer", asked, timeoutMs: 300 }),
    isHttp(409, "retrain_running", /was asked for at .* and waits for a worker/),
  );
});
