// A private nats-server with three connections (two workers and a replica) for a test file, and a logger whose lines are kept.
import { after, before } from "node:test";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { createLogger, type Logger } from "../../../telemetry/logger.ts";
import { type NatsServer, startNatsServer } from "./nats_server.ts";

/** Set once the file's `before` ran: the server, two workers' connections and a replica's. */
export interface NatsTrio {
  server: NatsServer;
  a: NatsConnection;
  b: NatsConnection;
  r: NatsConnection;
}

/**
 * Starts a private nats-server and three connections before the file's tests and closes them
 * after (registers `before` and `after`).
 *
 * @example const nats = natsTrio(); test("...", () => use(nats.a));
 */
export function natsTrio(): NatsTrio {
  const trio = {} as NatsTrio;
  before(async () => {
    trio.server = await startNatsServer();
    [trio.a, trio.b, trio.r] = await Promise.all(
      [0, 1, 2].map(() => connect({ servers: trio.server.url, timeout: 2000 })),
    );
  });
  after(async () => {
    await Promise.allSettled([trio.a?.close(), trio.b?.close(), trio.r?.close()]);
    await trio.server?.remove();
  });
  return trio;
}

/** A logger at info whose lines are kept, parsed. */
export function recordingLog(): {
  log: Logger;
  lines: { level: string; msg: string; key?: string }[];
} {
  const lines: { level: string; msg: string; key?: string }[] = [];
  const log = createLogger({
    service: "engine",
    level: "info",
    write: (line) => void lines.push(JSON.parse(line)),
  });
  return { log, lines };
}
