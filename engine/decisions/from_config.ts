// The decisions client as the engine's configuration describes it: off unless DECISIONS_POLL_S is set.
import { join } from "node:path";
import type { EngineConfig } from "../../contracts/config.ts";
import { DecisionsClient, type DecisionsLog } from "./decisions_client.ts";

/**
 * A client pulling `DECISIONS_URL` (else `NESTJS_URL`) every `DECISIONS_POLL_S` seconds, its
 * copies under `DATA_DIR/decisions`; `undefined` when `DECISIONS_POLL_S` is 0.
 */
export function decisionsFor(
  config: Pick<EngineConfig, "DECISIONS_URL" | "DECISIONS_POLL_S" | "DECISIONS_TOKEN" | "NESTJS_URL" | "DATA_DIR">,
  deps: { log?: DecisionsLog; fetch?: typeof fetch } = {},
): DecisionsClient | undefined {
  if (config.DECISIONS_POLL_S === 0) return undefined;
  return new DecisionsClient({
    baseUrl: config.DECISIONS_URL || config.NESTJS_URL,
    dir: join(config.DATA_DIR, "decisions"),
    pollMs: config.DECISIONS_POLL_S * 1000,
    log: deps.log,
    fetch: deps.fetch,
    token: config.DECISIONS_TOKEN,
  });
}
