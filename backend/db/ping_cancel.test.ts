import assert from "node:assert/strict";
import { connect, createServer, type Socket } from "node:net";
import { after, before, test } from "node:test";
import { type PrivatePostgres, startPrivatePostgres } from "../_test/private_postgres.ts";
import { readDatabaseHealth } from "../retention/database_health.ts";
import { type Database, openDatabase } from "./database.ts";

// A readiness ping or a Health page read that times out against a server that stopped answering
// asks PostgreSQL to cancel it on a connection of its own. When that one fails too (the server gone
// by then), the failure must stay inside: an unheard rejection ends a Node process. postgres.js
// 3.4's query.cancel() drops the promise of that request, so catching what it returns was not
// enough.
let pg: PrivatePostgres;
before(async () => {
  pg = await startPrivatePostgres();
});
after(() => pg?.dispose());

/** A TCP relay to PostgreSQL that can stop relaying (a hung server) and refuse new connections. */
async function relay(upstreamPort: number) {
  const state = { hung: false, refused: 0, sockets: new Set<Socket>() };
  let refusedClosed: () => void = () => {};
  const closedOnce = new Promise<void>((resolve) => {
    refusedClosed = resolve;
  });
  const server = createServer((client) => {
    state.sockets.add(client);
    if (state.hung) {
      state.refused++;
      client.on("close", refusedClosed);
      // A reset, as from a host whose server is gone: the asker's socket errors.
      client.resetAndDestroy();
      return;
    }
    const upstream = connect(upstreamPort, "127.0.0.1");
    state.sockets.add(upstream);
    client.on("data", (b) => state.hung || upstream.write(b));
    upstream.on("data", (b) => state.hung || client.write(b));
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ]) {
      a.on("error", () => {});
      a.on("close", () => b.destroy());
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    state,
    closedOnce,
    close() {
      for (const s of state.sockets) s.destroy();
      server.close();
    },
  };
}

for (const [what, read] of [
  ["ping", (db, signal) => db.ping(signal)],
  ["Health page read", (db, signal) => readDatabaseHealth(db, signal)],
] as const satisfies [string, (db: Database, signal: AbortSignal) => Promise<unknown>][]) {
  test(`a timed-out ${what} whose cancel request fails too is no unhandled rejection`, async () => {
    const unheard: unknown[] = [];
    const onUnheard = (reason: unknown) => unheard.push(reason);
    process.on("unhandledRejection", onUnheard);
    const proxy = await relay(Number(new URL(pg.url).port));
    const db = await openDatabase({ url: `postgres://postgres@127.0.0.1:${proxy.port}/postgres` });
    try {
      // Both connected first: the ping's own connection and the pool's.
      await db.ping();
      await db.sql`SELECT 1`;
      proxy.state.hung = true;
      await assert.rejects(read(db, AbortSignal.timeout(200)), { name: "TimeoutError" });
      // The cancel request's connection was refused; its failure has had its turn to surface.
      await proxy.closedOnce;
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.ok(proxy.state.refused >= 1, "a cancel was asked for");
      assert.deepEqual(unheard, []);
    } finally {
      process.off("unhandledRejection", onUnheard);
      proxy.close();
      await db.close(0).catch(() => {});
    }
  });
}
