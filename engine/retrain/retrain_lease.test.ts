// The retraining lease against a real nats-server: one holder of two contenders, kept by renewals, taken over once its holder stops renewing.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { createLogger } from "../../telemetry/logger.ts";
import { waitFor } from "../_test/wait_for.ts";
import { type NatsServer, startNatsServer } from "../bus/_test/nats_server.ts";
import { RetrainLease, RetrainLeases } from "./retrain_lease.ts";

/** A short TTL, so expiry shows within the test (the deployment's is 60 s). */
const TTL_MS = 1500;

let server: NatsServer;
/** Two workers, each with its own connection. */
let ncA: NatsConnection;
let ncB: NatsConnection;

before(async () => {
  server = await startNatsServer();
  [ncA, ncB] = await Promise.all([
    connect({ servers: server.url }),
    connect({ servers: server.url }),
  ]);
});

after(async () => {
  await Promise.allSettled([ncA?.close(), ncB?.close()]);
  await server?.remove();
});

const log = createLogger({ service: "engine", level: "silent", write: () => {} });

async function contenders(prefix: string, ttlMs = TTL_MS): Promise<[RetrainLeases, RetrainLeases]> {
  return [
    await RetrainLeases.open(ncA, prefix, { ttlMs }),
    await RetrainLeases.open(ncB, prefix, { ttlMs }),
  ];
}

/** For a lease held throughout: renewed every TTL/4, it survives a 2 s stall of this process. */
const HELD_TTL_MS = 3000;

test("of two workers asking at once for a model's retraining lease, one holds it; renewed, it outlives its TTL", async () => {
  const [a, b] = await contenders("LEASE1", HELD_TTL_MS);
  assert.equal(a.ttlMs, HELD_TTL_MS);
  const taken = await Promise.all([a.acquire("pump", "worker-a"), b.acquire("pump", "worker-b")]);
  const held = taken.filter((t) => t instanceof RetrainLease);
  assert.equal(held.length, 1, "exactly one contender holds the lease");
  const lease = held[0] as RetrainLease;
  const other = taken.find((t) => !(t instanceof RetrainLease)) as { holder: string };
  assert.equal(other.holder, lease.worker, "the other is told who holds it");
  // Another model's lease is another key.
  assert.ok((await b.acquire("fan", "worker-b")) instanceof RetrainLease);

  lease.keep(log);
  const [mine, theirs] = lease.worker === "worker-a" ? [a, b] : [b, a];
  const deadline = performance.now() + 2.5 * HELD_TTL_MS;
  while (performance.now() < deadline) {
    const again = await theirs.acquire("pump", "late");
    assert.ok(!(again instanceof RetrainLease), "a renewed lease is never taken over");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.equal(lease.signal.aborted, false);
  // Nor does its own holder's process take it twice.
  assert.ok(!((await mine.acquire("pump", lease.worker)) instanceof RetrainLease));

  await lease.release();
  const next = await theirs.acquire("pump", "next");
  assert.ok(next instanceof RetrainLease, "released: free at once");
  await next.release();
});

test("a lease whose holder stops renewing expires; another worker takes it and the old holder learns it lost it", async () => {
  const [a, b] = await contenders("LEASE2");
  const first = await a.acquire("pump", "worker-a");
  assert.ok(first instanceof RetrainLease);
  // worker-a stops renewing (its process hangs or died): no keep().
  assert.deepEqual(await b.acquire("pump", "worker-b"), { holder: "worker-a" });
  const started = performance.now();
  const second = await waitFor(
    async () => {
      const t = await b.acquire("pump", "worker-b");
      return t instanceof RetrainLease ? t : undefined;
    },
    "the lease to expire and worker-b to take it",
    20 * TTL_MS,
    100,
  );
  assert.ok(performance.now() - started >= TTL_MS * 0.5, "not before the entry aged out");
  // The old holder's next renewal fails, and whatever ran under its lease is told to stop.
  assert.equal(await first.renew(), false);
  assert.equal(first.signal.aborted, true);
  // Its release leaves the new holder's lease alone (a revision-checked delete).
  await first.release();
  assert.deepEqual(await a.acquire("pump", "worker-a"), { holder: "worker-b" });
  assert.equal(await second.renew(), true);
  await second.release();
});
