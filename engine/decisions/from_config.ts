// The decisions client as the engine's configuration describes it: off unless DECISIONS_POLL_S is set.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, type EngineConfig } from "../../contracts/config.ts";
import { DecisionsClient, type DecisionsLog } from "./decisions_client.ts";

const DECISIONS_TOKEN_MIN = 16;

/**
 * The token in `path` (trimmed), read once at start-up. A file that cannot be read or is empty
 * is a ConfigError naming it (as `withSecretFiles` says it), and so is one shorter than
 * `DECISIONS_TOKEN` may be: the engine exits with that line.
 */
function tokenFromFile(path: string | undefined): string | undefined {
  if (path === undefined) return undefined;
  let token: string;
  try {
    token = readFileSync(path, "utf8").trim();
  } catch (error) {
    throw new ConfigError(
      `'DECISIONS_TOKEN_FILE' ${path} cannot be read: ${(error as Error).message}`,
    );
  }
  if (token === "") throw new ConfigError(`'DECISIONS_TOKEN_FILE' ${path} is empty`);
  // The length DECISIONS_TOKEN must have (contracts/config.ts): a token from the file is no shorter.
  if (token.length < DECISIONS_TOKEN_MIN) {
    throw new ConfigError(
      `'DECISIONS_TOKEN_FILE' ${path} must hold at least ${DECISIONS_TOKEN_MIN} characters, as 'DECISIONS_TOKEN' must`,
    );
  }
  return token;
}

/** The folder of one writer among several sharing `DATA_DIR/decisions` (a scale-out worker's). */
export const decisionsWriterFolder = (writer: string) => `worker-${writer}`;

/**
 * A client pulling `DECISIONS_URL` (else `NESTJS_URL`) every `DECISIONS_POLL_S` seconds, its
 * copies under `DATA_DIR/decisions`; `undefined` when `DECISIONS_POLL_S` is 0. With `writer` (a
 * scale-out worker's id, stable across its restarts) the copies go to
 * `DATA_DIR/decisions/worker-<writer>/`, so workers sharing one `DATA_DIR` never replace each
 * other's copy and a restarted worker starts from its own.
 */
export function decisionsFor(
  config: Pick<
    EngineConfig,
    | "DECISIONS_URL"
    | "DECISIONS_POLL_S"
    | "DECISIONS_TOKEN"
    | "DECISIONS_TOKEN_FILE"
    | "NESTJS_URL"
    | "DATA_DIR"
  >,
  deps: { log?: DecisionsLog; fetch?: typeof fetch; writer?: string } = {},
): DecisionsClient | undefined {
  if (config.DECISIONS_POLL_S === 0) return undefined;
  const dir = join(config.DATA_DIR, "decisions");
  return new DecisionsClient({
    baseUrl: config.DECISIONS_URL || config.NESTJS_URL,
    dir: deps.writer ? join(dir, decisionsWriterFolder(deps.writer)) : dir,
    pollMs: config.DECISIONS_POLL_S * 1000,
    log: deps.log,
    fetch: deps.fetch,
    token: config.DECISIONS_TOKEN ?? tokenFromFile(config.DECISIONS_TOKEN_FILE),
  });
}
