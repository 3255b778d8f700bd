// Asking again whether who sent a request may still read, for answers that outlive it (event streams).
import type { Context } from "hono";

/** The context variable the auth middleware leaves its re-check in. */
const CHECK = "stillSignedIn";

/** Leaves in `c` how to ask again whether its identity still holds (the auth middleware does). */
export function keepSignInCheck(c: Context, check: () => Promise<boolean>): void {
  c.set(CHECK, check);
}

/**
 * Whether the identity that sent `c` still holds: its API token not removed, replaced or
 * expired, its session not expired. True where the auth middleware left no check: nobody signs
 * in there (`AUTH_MODE=none`). A check that fails to answer counts as no.
 *
 * @example while (await stillSignedIn(c)) await stream.write(": keep-alive\n\n");
 */
export async function stillSignedIn(c: Context): Promise<boolean> {
  const check = c.get(CHECK) as (() => Promise<boolean>) | undefined;
  if (!check) return true;
  try {
    return await check();
  } catch {
    return false;
  }
}
