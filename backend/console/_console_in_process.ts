// Test helper: the backend app served in-process on a port of its own, on the first test database, with token sign-in for named people when asked: what the console's browser tests start.
import { mkdtemp, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ServerType, serve } from "@hono/node-server";
import type { Hono } from "hono";
import type { Role } from "../../contracts/auth.ts";
import { createBackendApp } from "../app.ts";
import { createAuth } from "../auth/auth.ts";
import { addToken } from "../auth/token_file.ts";
import { openTokenStore } from "../auth/token_store.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";

export interface ConsoleInProcess {
  /** `http://127.0.0.1:PORT` */
  base: string;
  port: number;
  app: Hono;
  db: TestDatabase;
  /** Each person's API token, by name (`AUTH_MODE=token`); empty without `people`. */
  tokens: Record<string, string>;
  /** The tokens file, with `people`. */
  tokensFile?: string;
  close(): Promise<void>;
}

/**
 * Serves `createBackendApp` on 127.0.0.1 (the system picks the port). With `people`, sign-in is
 * by API token (a tokens file in a temporary folder, one token each); without, `AUTH_MODE=none`.
 * `now` is the auth's clock (sessions end by it).
 */
export async function serveConsole(
  options: { people?: ReadonlyArray<readonly [name: string, role: Role]>; now?: () => number } = {},
): Promise<ConsoleInProcess> {
  const tokens: Record<string, string> = {};
  let dir: string | undefined;
  let tokensFile: string | undefined;
  let auth: ReturnType<typeof createAuth> | undefined;
  if (options.people) {
    dir = await mkdtemp(join(tmpdir(), "console-tokens-"));
    tokensFile = join(dir, "tokens.json");
    for (const [name, role] of options.people) {
      const secret = await addToken(tokensFile, { name, role });
      if (!secret) throw new Error(`no token added for ${name}`);
      tokens[name] = secret;
    }
    auth = createAuth({
      mode: "token",
      tokens: await openTokenStore({ path: tokensFile, checkEveryMs: 0 }),
      now: options.now,
    });
  }
  const db = await testTargets()[0].open();
  const app = createBackendApp({ database: db, auth });
  let server: ServerType | undefined;
  const port = await new Promise<number>((resolve) => {
    server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, (info: AddressInfo) =>
      resolve(info.port),
    );
  });
  return {
    base: `http://127.0.0.1:${port}`,
    port,
    app,
    db,
    tokens,
    tokensFile,
    async close() {
      await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
      await db.dispose();
      if (dir) await rm(dir, { recursive: true, force: true });
    },
  };
}
