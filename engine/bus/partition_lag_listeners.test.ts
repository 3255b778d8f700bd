// The lease watch of PartitionLag restarted again and again keeps one abort listener on the role's signal, not one per restart.
import assert from "node:assert/strict";
import { getEventListeners } from "node:events";
import { after, before, test } from "node:test";
import { jetstreamManager } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { createLogger } from "../../telemetry/logger.ts";
import { waitFor } from "../_test/wait_for.ts";
import { type NatsServer, startNatsServer } from "./_test/nats_server.ts";
import { PartitionLag } from "./partition_lag.ts";

let server: NatsServer;
let nc: NatsConnection;
before(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url, timeout: 2000 });
});
after(async () => {
  await nc?.close();
  await server?.remove();
});

test("each restarted lease watch removes its abort listener from the long-lived signal", {
  timeout: 60_000,
}, async () => {
  const bucket = await new Kvm(nc).create("LAG_listeners", { history: 1 });
  // The bucket's own watches, kept so the test can end each one (as a lost consumer ends it).
  const watches: { stop(): void }[] = [];
  const kv = {
    watch: async (opts: Parameters<KV["watch"]>[0]) => {
      const watch = await bucket.watch(opts);
      watches.push(watch);
      return watch;
    },
  } as unknown as KV;
  const lag = new PartitionLag({
    kv,
    jsm: await jetstreamManager(nc),
    stream: "LAG_listeners_frames",
    partitions: 2,
    log: createLogger({ service: "engine", write: () => {} }),
    // Counting stays out of the way: only its one pause listens on the signal meanwhile.
    countEveryMs: 3_600_000,
  });
  const role = new AbortController();
  const following = lag.follow(role.signal);
  const listeners = () => getEventListeners(role.signal, "abort").length;
  try {
    await waitFor(() => watches.length === 1, "the first watch");
    // The watch's listener is added once its watch is open.
    await waitFor(() => listeners() === 2, "the first watch's listener and the count's pause");
    for (let restart = 1; restart <= 5; restart++) {
      watches[restart - 1].stop();
      await waitFor(() => watches.length === restart + 1, `watch ${restart + 1}`, 15_000);
    }
    assert.equal(listeners(), 2, "one listener for the watch running, one for the count's pause");
  } finally {
    role.abort();
    await following;
  }
});
