import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { kvBucket, objectBucket } from "./_buckets.ts";
import { type NatsServer, startNatsServer } from "./bus/_test/nats_server.ts";

let server: NatsServer;
let conns: NatsConnection[];

before(async () => {
  server = await startNatsServer();
  // Three processes' connections.
  conns = await Promise.all([1, 2, 3].map(() => connect({ servers: server.url })));
});

after(async () => {
  await Promise.all((conns ?? []).map((c) => c.close()));
  await server?.remove();
});

test("processes creating the same buckets together each get them and read them at once", {
  timeout: 120_000,
}, async () => {
  // Each asks whether the stream exists, then adds it: one that asked while another was adding
  // was refused. One that found it half made and read at once had its direct get dropped (a 5 s
  // timeout) or, reading through the stream's API, crashed nats-server 2.9.
  for (let round = 0; round < 20; round++) {
    const read = await Promise.all(
      conns.map(async (c) => {
        const objects = await objectBucket(c, `BKT_objects${round}`);
        const kv = await kvBucket(c, `BKT_pointer${round}`, { history: 1 });
        return [await kv.get("pointer"), await objects.info("absent")];
      }),
    );
    assert.deepEqual(read, [
      [null, null],
      [null, null],
      [null, null],
    ]);
  }
});
