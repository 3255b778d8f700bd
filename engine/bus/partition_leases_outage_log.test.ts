// Partition leases through a NATS outage: one warning when the lease rounds start failing, one more when they fail differently or keep failing for long, one line with how long when they work again.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { waitFor } from "../_test/wait_for.ts";
import { type NatsServer, startNatsServer } from "./_test/nats_server.ts";
import { recordingLog } from "./_test/nats_trio.ts";
import { PartitionLeases } from "./partition_leases.ts";

let server: NatsServer;
let nc: NatsConnection;
before(async () => {
  server = await startNatsServer();
  // Reconnecting for as long as it takes, as the engine's own connection does.
  nc = await connect({
    servers: server.url,
    timeout: 2000,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 50,
  });
});
after(async () => {
  await nc?.close();
  await server?.remove();
});

test("lease rounds failing through a NATS outage log one warning, and one info line with failing_ms when they work again", {
  timeout: 120_000,
}, async () => {
  // A short request timeout: a round fails within it while the server is down.
  const kv = await new Kvm(jetstream(nc, { timeout: 300 })).create("OUTAGE_leases", {
    history: 1,
  });
  const { log, lines } = recordingLog();
  let failedRounds = 0;
  let lagReads = 0;
  const leases = new PartitionLeases({
    kv,
    partitions: 2,
    workerId: "w-outage",
    leaseMs: 400,
    log,
    onAcquire: () => {},
    onRelease: async () => {},
    onLost: () => {},
    // Read at every renewal: the count of rounds that renewed a lease.
    lagOf: () => {
      lagReads++;
      return 0;
    },
    onError: () => {
      failedRounds++;
    },
  });
  // The rounds' own lines ("partition lost", a lease run out meanwhile, is said apart).
  const atLevel = (level: string) =>
    lines.filter((l) => l.level === level && l.msg.startsWith("partition lease round"));
  leases.start();
  try {
    await waitFor(async () => leases.owned.length === 2, "both partitions leased");
    assert.deepEqual(atLevel("warn"), []);

    await server.signal("SIGTERM");
    await waitFor(async () => failedRounds >= 5, "5 failed lease rounds", 60_000);
    assert.deepEqual(
      atLevel("warn").map((l) => l.msg),
      ["partition lease round failed; retrying each round"],
    );
    assert.deepEqual(atLevel("info"), []);

    await server.start();
    await waitFor(
      async () => atLevel("info").some((l) => l.msg === "partition lease rounds work again"),
      "the line that lease rounds work again",
      60_000,
    );
    const back = atLevel("info").find((l) => l.msg === "partition lease rounds work again") as {
      failing_ms?: unknown;
    };
    assert.equal(typeof back.failing_ms, "number");
    // Rounds after that log nothing more.
    await waitFor(async () => leases.owned.length === 2, "both partitions leased again");
    const from = lagReads;
    await waitFor(async () => lagReads >= from + 4, "4 more renewals");
    assert.equal(atLevel("warn").length, 1, JSON.stringify(lines));
    assert.deepEqual(
      atLevel("info").map((l) => l.msg),
      ["partition lease rounds work again"],
    );
  } finally {
    await leases.stop();
  }
});

test("a different failure while the lease rounds fail (the bucket gone, then NATS down) is warned of too, and a persisting one again every failureRewarnMs", {
  timeout: 120_000,
}, async () => {
  const kv = await new Kvm(jetstream(nc, { timeout: 300 })).create("SPELL_leases", { history: 1 });
  const { log, lines } = recordingLog();
  let failedRounds = 0;
  const leases = new PartitionLeases({
    kv,
    partitions: 2,
    workerId: "w-spell",
    leaseMs: 400,
    log,
    onAcquire: () => {},
    onRelease: async () => {},
    onLost: () => {},
    onError: () => {
      failedRounds++;
    },
    failureRewarnMs: 1000,
  });
  type Line = { level: string; msg: string; error?: { message?: string }; failing_ms?: number };
  const warnings = () =>
    (lines as Line[]).filter(
      (l) => l.level === "warn" && l.msg.startsWith("partition lease round"),
    );
  const shown = () => JSON.stringify(warnings().map((l) => [l.msg, l.error?.message]));
  leases.start();
  try {
    await waitFor(async () => leases.owned.length === 2, "both partitions leased");

    // The bucket's stream deleted under it: every round fails with JetStream's answer.
    await jetstreamManager(nc).then((jsm) => jsm.streams.delete("KV_SPELL_leases"));
    await waitFor(async () => warnings().length > 0, "a warning for the lost bucket");
    const first = warnings()[0];
    const from = failedRounds;
    await waitFor(async () => failedRounds >= from + 3, "3 more failed rounds");
    assert.deepEqual(
      warnings().map((l) => l.msg),
      ["partition lease round failed; retrying each round"],
    );

    // Then NATS itself down: rounds fail differently (a timeout), which is warned of too.
    await server.signal("SIGTERM");
    const differently = await waitFor(
      async () => warnings().find((l) => l.msg.includes("differently")),
      "a warning for the new failure",
      30_000,
    ).catch((error: Error) => assert.fail(`${error.message}: ${shown()}`));
    assert.equal(
      differently.msg,
      "partition lease rounds fail differently now; retrying each round",
    );
    assert.notEqual(differently.error?.message, first.error?.message);
    assert.equal(typeof differently.failing_ms, "number");

    // And, persisting, again after failureRewarnMs, with how long the rounds have failed.
    const again = await waitFor(
      async () => warnings().find((l) => l.msg.includes("still fail")),
      "the persisting failure warned of again",
      30_000,
    ).catch((error: Error) => assert.fail(`${error.message}: ${shown()}`));
    assert.equal(again.msg, "partition lease rounds still fail; retrying each round");
    assert.ok((again.failing_ms as number) >= 1000, JSON.stringify(again));
  } finally {
    await leases.stop();
    await server.start();
  }
});
