// Token-mode sign-in for a backend under test: each person's token hashed into a tokens file in `dir`.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type Role, tokenDigest } from "../../contracts/auth.ts";
import { createAuth } from "../auth/auth.ts";
import { openTokenStore } from "../auth/token_store.ts";

/**
 * `AUTH_MODE=token` over `people` (name → role and token), their hashes written to
 * `dir/tokens.json` as `npm run token` writes them.
 *
 * @example const auth = await tokenAuth(dir, { ana: { role: "admin", token: "..." } });
 */
export async function tokenAuth(
  dir: string,
  people: Record<string, { role: Role; token: string }>,
): Promise<ReturnType<typeof createAuth>> {
  const file = join(dir, "tokens.json");
  const list = await Promise.all(
    Object.entries(people).map(async ([name, p]) => ({
      name,
      role: p.role,
      sha256: await tokenDigest(p.token),
    })),
  );
  await writeFile(file, JSON.stringify(list));
  return createAuth({ mode: "token", tokens: await openTokenStore({ path: file }) });
}
