// API tokens from API_TOKENS_FILE: hashed on disk, matched in constant time, the file re-read when it changes.
import { readFile, stat } from "node:fs/promises";
import { type ApiToken, parseApiTokens, tokenDigest } from "../../contracts/auth.ts";
import type { Logger } from "../../telemetry/logger.ts";

/** A bad tokens file; the message names the file and the entry. */
export class TokensFileError extends Error {
  override name = "TokensFileError";
}

export interface TokenStoreOptions {
  path: string;
  now?: () => number;
  log?: Logger;
  /** How often the file's modification time is looked at (default 1 s). */
  checkEveryMs?: number;
}

/** Whether two equal-length hex digests are equal, in time independent of where they differ. */
function sameDigest(a: string, b: string): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < Math.min(a.length, b.length); i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/**
 * Opens the tokens file (throws {@link TokensFileError} when it is missing or bad: the backend
 * does not start). Afterwards an edit takes effect within `checkEveryMs`: a removed or expired
 * token is refused from then on, sessions it opened included. A file broken by a later edit
 * refuses every token until it is mended (failing closed: a half-written edit must not keep a
 * removed person in), and says so in the log.
 *
 * @example const tokens = await openTokenStore({ path: "tokens.json" }); await tokens.find(bearer);
 */
export async function openTokenStore(options: TokenStoreOptions) {
  const { path, log, checkEveryMs = 1000 } = options;
  const now = options.now ?? Date.now;
  let tokens: ApiToken[] = [];
  let version = "";
  let checkedAt = 0;

  async function load(): Promise<void> {
    const info = await stat(path);
    const seen = `${info.mtimeMs}:${info.size}`;
    if (seen === version) return;
    const text = await readFile(path, "utf8");
    try {
      tokens = parseApiTokens(text);
    } catch (error) {
      throw new TokensFileError(`API_TOKENS_FILE ${path}: ${(error as Error).message}`);
    }
    version = seen;
  }

  try {
    await load();
  } catch (error) {
    if (error instanceof TokensFileError) throw error;
    throw new TokensFileError(`API_TOKENS_FILE ${path}: ${(error as Error).message}`);
  }
  checkedAt = now();

  async function current(): Promise<ApiToken[]> {
    if (now() - checkedAt < checkEveryMs) return tokens;
    checkedAt = now();
    try {
      await load();
    } catch (error) {
      if (tokens.length > 0)
        log?.error("tokens file unreadable: refusing every token", error as Error);
      tokens = [];
      version = "";
    }
    return tokens;
  }

  const live = (t: ApiToken) => !t.expires_at || Date.parse(t.expires_at) > now();

  return {
    /** The entry whose hash matches `token` and has not expired, else `undefined`. */
    async find(token: string): Promise<ApiToken | undefined> {
      const digest = await tokenDigest(token);
      let found: ApiToken | undefined;
      // Every entry is compared, so the time taken does not say which one matched.
      for (const t of await current()) if (sameDigest(digest, t.sha256) && !found) found = t;
      return found && live(found) ? found : undefined;
    },
    /** The live entry named `name` (a session opened with a token checks it still exists). */
    async byName(name: string): Promise<ApiToken | undefined> {
      const t = (await current()).find((x) => x.name === name);
      return t && live(t) ? t : undefined;
    },
  };
}

export type TokenStore = Awaited<ReturnType<typeof openTokenStore>>;
