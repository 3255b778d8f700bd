// A scale-out worker's scheduled run against a real nats-server: the lease holder runs on the shared active version, the others skip; a holder that lost its lease publishes and records nothing.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { NAME, plantFrames, trainInto } from "../../models/retrain/_test/plant_history.ts";
import { createLogger } from "../../telemetry/logger.ts";
import { waitFor } from "../_test/wait_for.ts";
import { type NatsServer, startNatsServer } from "../bus/_test/nats_server.ts";
import { NatsModelRegistry } from "../infer/nats_registry.ts";
import { ModelRegistry, verifyVersion } from "../infer/registry.ts";
import type { RetrainChildOptions, RetrainResult } from "./retrain_child.ts";
import { RetrainLeases } from "./retrain_lease.ts";
import { readRetrainRecord, writeRetrainRecord } from "./retrain_record.ts";
import { sharedRetrainRun } from "./shared_retrain.ts";

/** Long enough that no stall of a busy host's test process loses a held lease (renewed every TTL/4). */
const TTL_MS = 6000;
const log = createLogger({ service: "engine", level: "silent", write: () => {} });

let server: NatsServer;
let nc: NatsConnection;
let root: string;
/** The shared registry's first version (active) and a second one of the same sensors. */
let v1 = "";
let v2Dir = "";
let v2 = "";

before(async () => {
  [server, root] = await Promise.all([
    startNatsServer(),
    mkdtemp(join(tmpdir(), "shared-retrain-")),
  ]);
  nc = await connect({ servers: server.url });
  v1 = (await trainInto(join(root, "v1"), plantFrames(600, 1), true)).meta.version;
  v2Dir = join(root, "v2");
  v2 = (await trainInto(v2Dir, plantFrames(600, 3), true)).meta.version;
});

after(async () => {
  await nc?.close();
  await server?.remove();
  await rm(root, { recursive: true, force: true });
});

/** A deployment `prefix` whose shared registry holds v1, active. */
async function deployment(prefix: string) {
  const registry = await NatsModelRegistry.open(nc, prefix);
  await registry.publishFromDisk(await new ModelRegistry(join(root, "v1")).resolve(NAME));
  const leases = await RetrainLeases.open(nc, prefix, { ttlMs: TTL_MS });
  const runFor = (
    worker: string,
    runChild: (o: RetrainChildOptions) => Promise<RetrainResult>,
    now?: () => number,
  ) =>
    sharedRetrainRun({
      config: { RETRAIN_EVERY_H: 1, RETRAIN_PROMOTE: "auto" },
      env: { HISTORY_DIR: join(root, "history"), RETRAIN_PROMOTE: "auto" },
      registry,
      leases: async () => leases,
      worker,
      log,
      runChild,
      now,
    });
  return { registry, leases, runFor };
}

test("sharedRetrainRun: the lease holder retrains the shared active version; the others skip, naming it", async () => {
  const { registry, leases, runFor } = await deployment("SR1");
  let release = () => {};
  const mayEnd = new Promise<void>((resolve) => {
    release = resolve;
  });
  const seen: { version: string; promote: string; history: string }[] = [];
  const a = runFor("a", async ({ env }) => {
    // The child gets a registry on disk holding the shared active version, active there.
    const local = new ModelRegistry(env.MODEL_DIR);
    seen.push({
      version: (await local.resolve(NAME)).version,
      promote: env.RETRAIN_PROMOTE,
      history: env.HISTORY_DIR,
    });
    await mayEnd;
    return { outcome: "decided", decision: "held", reasons: ["nothing better"] };
  });
  const b = runFor("b", () => {
    throw new Error("b never runs: a holds the lease, then a ran within the interval");
  });
  const running = a(NAME, new AbortController().signal);
  await waitFor(() => seen.length === 1, "a's run to start");
  assert.deepEqual(seen, [{ version: v1, promote: "manual", history: join(root, "history") }]);
  assert.equal((await readRetrainRecord(registry.kv, NAME))?.last.outcome, "running");
  assert.deepEqual(await b(NAME, new AbortController().signal), {
    skipped: `worker a holds the retraining lease of ${NAME}`,
  });
  release();
  assert.deepEqual(await running, {
    outcome: "decided",
    decision: "held",
    reasons: ["nothing better"],
  });
  const record = await readRetrainRecord(registry.kv, NAME);
  assert.equal(record?.last.worker, "a");
  assert.equal(record?.last.decision, "held");
  assert.ok(record?.last.finished_at);
  const skipped = await b(NAME, new AbortController().signal);
  assert.match(
    (skipped as { skipped: string }).skipped,
    /was retrained by a at .*, within RETRAIN_EVERY_H/,
  );
  // The lease was released: free for whoever comes next.
  const next = await leases.acquire(NAME, "c");
  assert.ok("release" in next);
  await next.release();
  assert.deepEqual(await registry.versions(NAME), [v1]);
});

test("sharedRetrainRun: a holder whose lease went to another worker during the run publishes and records nothing", async () => {
  const { registry, leases, runFor } = await deployment("SR2");
  const a = runFor("a", async ({ env, signal }) => {
    // A candidate the gate promoted, written where the real CLI writes it...
    const v2Ref = await new ModelRegistry(v2Dir).resolve(NAME);
    await new ModelRegistry(env.MODEL_DIR).write(
      await readFile(join(v2Ref.dir, `${NAME}.onnx`)),
      await verifyVersion(v2Ref),
    );
    // ...while worker a stalls past its TTL and worker b takes the lease over.
    await leases.kv.delete(`lease.${NAME}`);
    assert.ok("release" in (await leases.acquire(NAME, "b")));
    await waitFor(() => signal.aborted, "a to learn it lost the lease", 10 * TTL_MS);
    return {
      outcome: "decided",
      decision: "promoted",
      candidate_version: v2,
      reasons: ["better"],
    };
  });
  const result = (await a(NAME, new AbortController().signal)) as RetrainResult;
  assert.equal(result.outcome, "failed");
  assert.match(result.error ?? "", /^stopped: the retraining lease expired or another worker/);
  assert.deepEqual(await registry.versions(NAME), [v1], "nothing published");
  assert.equal((await registry.pointer(NAME))?.version, v1);
  // The record still shows a's run as it started: the new holder's to overwrite, not a's.
  const record = await readRetrainRecord(registry.kv, NAME);
  assert.equal(record?.last.outcome, "running");
  assert.equal(record?.last.worker, "a");
});

test("sharedRetrainRun: a worker whose clock runs ahead does not stop the others' scheduled runs", async () => {
  const { registry, runFor } = await deployment("SR3");
  const HOUR = 3_600_000;
  const runs: string[] = [];
  /** Worker `name` whose clock is `skewMs` off; its run is a held candidate. */
  const worker = (name: string, skewMs: number) =>
    runFor(
      name,
      async () => {
        runs.push(name);
        return { outcome: "decided", decision: "held", reasons: ["nothing better"] };
      },
      () => Date.now() + skewMs,
    );
  const signal = new AbortController().signal;
  // Worker a's clock is a day ahead: its record says it finished tomorrow.
  await worker("a", 24 * HOUR)(NAME, signal);
  const finished = (await readRetrainRecord(registry.kv, NAME))?.last.finished_at ?? "";
  assert.ok(Date.parse(finished) > Date.now() + 23 * HOUR);
  // A right clock: within the interval it skips; once the interval is over it runs.
  const skipped = await worker("b", 0)(NAME, signal);
  assert.match((skipped as { skipped: string }).skipped, /was retrained by a at .*, within/);
  await worker("b", 2 * HOUR)(NAME, signal);
  assert.deepEqual(runs, ["a", "b"]);
  // A clock behind the server's sees the last run end in the future: due, not never.
  await worker("c", -24 * HOUR)(NAME, signal);
  assert.deepEqual(runs, ["a", "b", "c"]);
});

test("sharedRetrainRun: a candidate the gate promoted is held, not activated, when a person activated another version during the run", async () => {
  const { registry, runFor } = await deployment("SR4");
  // A second published version, the one a person rolls back to through a replica.
  await registry.publishFromDisk(await new ModelRegistry(v2Dir).resolve(NAME));
  const v3Dir = join(root, "v3");
  const v3 = (await trainInto(v3Dir, plantFrames(600, 4), true)).meta.version;
  const a = runFor("a", async ({ env }) => {
    const v3Ref = await new ModelRegistry(v3Dir).resolve(NAME);
    await new ModelRegistry(env.MODEL_DIR).write(
      await readFile(join(v3Ref.dir, `${NAME}.onnx`)),
      await verifyVersion(v3Ref),
    );
    await registry.activate(NAME, v2, { by: "bob", reason: "rollback during the run" });
    return { outcome: "decided", decision: "promoted", candidate_version: v3, reasons: ["better"] };
  });
  const result = (await a(NAME, new AbortController().signal)) as RetrainResult;
  assert.equal(result.decision, "held");
  assert.equal(result.activated, false);
  assert.match(
    result.reasons[0],
    new RegExp(
      `^the active version changed during the run: the gate compared the candidate with ${v1.replace(/[.+]/g, "\\$&")}, the registry names ${v2.replace(/[.+]/g, "\\$&")} since \\(activated by bob at [^)]+: rollback during the run\\); published, not activated$`,
    ),
  );
  assert.equal(result.reasons[1], "better");
  const pointer = await registry.pointer(NAME);
  assert.deepEqual([pointer?.version, pointer?.by], [v2, "bob"], "bob's activation stands");
  assert.ok((await registry.versions(NAME)).includes(v3), "published, ready for a person");
  const record = await readRetrainRecord(registry.kv, NAME);
  assert.equal(record?.last.decision, "held");
  assert.equal(record?.last_promoted, undefined);
});

test("sharedRetrainRun: a run left running by a worker that stopped is shown, then recorded, as failed", async () => {
  const { registry, leases, runFor } = await deployment("SR5");
  const promoted = {
    started_at: "2026-01-01T00:00:00.000Z",
    finished_at: "2026-01-01T00:05:00.000Z",
    outcome: "decided" as const,
    decision: "promoted" as const,
    reasons: [],
    worker: "gone",
  };
  const { decision: _, ...started } = promoted;
  const cut = { ...started, finished_at: null, outcome: "running" as const };
  await writeRetrainRecord(registry.kv, NAME, { last: cut, last_promoted: promoted });
  const unseen =
    /^worker gone stopped during this run \(killed, restarted or cut off from NATS\), so its end was not seen/;
  // Its worker holds the lease (alive, running it): shown as it is.
  const held = await leases.acquire(NAME, "gone");
  assert.ok("release" in held);
  assert.equal((await readRetrainRecord(registry.kv, NAME, leases.kv))?.last.outcome, "running");
  await held.release();
  // Nobody holds it: shown failed, the record itself untouched until a worker takes the lease.
  const shown = await readRetrainRecord(registry.kv, NAME, leases.kv);
  assert.equal(shown?.last.outcome, "failed");
  assert.match(shown?.last.error ?? "", unseen);
  assert.equal((await readRetrainRecord(registry.kv, NAME))?.last.outcome, "running");
  // The next holder records it failed before anything else, even a run it then skips.
  const b = runFor("b", () => {
    throw new Error("b does not run: the request it was woken for is gone");
  });
  assert.deepEqual(await b(NAME, new AbortController().signal, { by: "ana", reason: "", at: "" }), {
    skipped: `the request to retrain ${NAME} was taken by another worker`,
  });
  const record = await readRetrainRecord(registry.kv, NAME);
  assert.deepEqual(record, {
    last: { ...cut, outcome: "failed", error: shown?.last.error },
    last_promoted: promoted,
  });
});

test("sharedRetrainRun: a worker back after a kill records its own cut-short run as failed and removes its dead scratch folders", async () => {
  const { registry, runFor } = await deployment("SR6");
  const cut = {
    started_at: "2026-01-01T00:00:00.000Z",
    finished_at: null,
    outcome: "running" as const,
    reasons: [],
    worker: "a",
  };
  await writeRetrainRecord(registry.kv, NAME, { last: cut });
  // A pid no process has (above the kernel's largest pid_max), and a live process's.
  const dead = await mkdtemp(join(tmpdir(), `retrain-${NAME}-pid4194305-`));
  const alive = await mkdtemp(join(tmpdir(), `retrain-${NAME}-pid${process.ppid}-`));
  runFor("a", async () => ({ outcome: "decided", decision: "held", reasons: [] }));
  const settled = await waitFor(async () => {
    const r = await readRetrainRecord(registry.kv, NAME);
    return r?.last.outcome === "failed" ? r : undefined;
  }, "a's start to settle its run");
  assert.match(settled.last.error ?? "", /^worker a stopped during this run/);
  await waitFor(async () => !(await stat(dead).catch(() => undefined)), "the dead folder to go");
  assert.ok(await stat(alive), "a live process's folder stays");
  await rm(alive, { recursive: true });
});
