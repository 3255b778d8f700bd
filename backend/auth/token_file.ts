// Adding and removing API tokens in API_TOKENS_FILE: a new secret is returned once, only its hash is written.
import { existsSync } from "node:fs";
import { readFile, rename, writeFile } from "node:fs/promises";
import { type ApiToken, parseApiTokens, type Role, tokenDigest } from "../../contracts/auth.ts";

/** The file's tokens (none when it does not exist yet); throws naming a bad entry. */
export async function readTokens(file: string): Promise<ApiToken[]> {
  return existsSync(file) ? parseApiTokens(await readFile(file, "utf8")) : [];
}

/** Writes the file whole (a new file renamed over the old): a reader never sees half of it. */
export async function writeTokens(file: string, tokens: ApiToken[]): Promise<void> {
  parseApiTokens(JSON.stringify(tokens));
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(tokens, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, file);
}

/**
 * Adds a token named `name` and returns its secret (32 random bytes, base64url), or `undefined`
 * when the file already holds that name (nothing changes).
 *
 * @example const secret = await addToken("tokens.json", { name: "ana", role: "operator" });
 */
export async function addToken(
  file: string,
  t: { name: string; role: Role; expiresAt?: string },
): Promise<string | undefined> {
  const tokens = await readTokens(file);
  if (tokens.some((x) => x.name === t.name)) return undefined;
  const secret = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");
  const entry: ApiToken = {
    name: t.name,
    role: t.role,
    sha256: await tokenDigest(secret),
    ...(t.expiresAt ? { expires_at: t.expiresAt } : {}),
  };
  await writeTokens(file, [...tokens, entry]);
  return secret;
}
