import assert from "node:assert/strict";
import { type AddressInfo, createServer, type Server, connect as tcpConnect } from "node:net";
import { after, before, test } from "node:test";
import { Kvm } from "@nats-io/kv";
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

test("kvBucket binds to a bucket made by another tool without direct gets, and reads it", {
  timeout: 20_000,
}, async () => {
  // Such a stream never answers a direct get: it is not waited for (probing would last 30 s).
  const made = await new Kvm(conns[0]).create("BKT_nodirect", { history: 1, allow_direct: false });
  await made.put("k", "v");
  const kv = await kvBucket(conns[1], "BKT_nodirect", { history: 1 });
  assert.equal((await kv.get("k"))?.string(), "v");
});

/** A TCP relay to the server that holds every chunk `delayMs` each way: a slow link. */
async function slowLink(port: number, delayMs: number): Promise<Server> {
  const relay = createServer((client) => {
    const upstream = tcpConnect(port, "127.0.0.1");
    client.on("data", (d) => setTimeout(() => upstream.write(d), delayMs));
    upstream.on("data", (d) => setTimeout(() => client.write(d), delayMs));
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ]) {
      a.on("error", () => b.destroy());
      a.on("close", () => b.destroy());
    }
  });
  await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
  return relay;
}

test("kvBucket and objectBucket open over a link slower than their first probe", {
  timeout: 60_000,
}, async () => {
  const relay = await slowLink(server.port, 300);
  const far = await connect({ servers: `127.0.0.1:${(relay.address() as AddressInfo).port}` });
  try {
    const kv = await kvBucket(far, "BKT_far", { history: 1 });
    const objects = await objectBucket(far, "BKT_far_objects");
    assert.equal(await kv.get("pointer"), null);
    assert.equal(await objects.info("absent"), null);
  } finally {
    await far.close();
    relay.close();
  }
});
