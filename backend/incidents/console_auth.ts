// Who may acknowledge: with CONSOLE_TOKEN set, a matching bearer token or console cookie (same-site only).
import type { Context } from "hono";
import { getCookie } from "hono/cookie";
import { HttpError } from "../../contracts/error.ts";

/** The cookie the console's token form sets. */
export const TOKEN_COOKIE = "console_token";

/**
 * Sign-in's failure limiter (`createAuth`'s `checkLimit` and `failed`), so that guessing the
 * console token is as slow and as visible as guessing an API token.
 */
export interface FailedSecretGuard {
  /** Throws 429 `too_many_attempts` while the client's address has failed too often. */
  checkLimit(c: Context): void;
  /** Counts a wrong secret against the client's address and logs it (`how` names the way in). */
  failed(c: Context, how: string): void;
}

/** Whether two secrets are equal, in time independent of where they differ. */
export async function sameSecret(a: string, b: string): Promise<boolean> {
  // Comparing digests keeps the time taken independent of where the strings differ.
  const enc = new TextEncoder();
  const [x, y] = await Promise.all([
    crypto.subtle.digest("SHA-256", enc.encode(a)),
    crypto.subtle.digest("SHA-256", enc.encode(b)),
  ]);
  const p = new Uint8Array(x);
  const q = new Uint8Array(y);
  let diff = 0;
  for (let i = 0; i < p.length; i++) diff |= p[i] ^ q[i];
  return diff === 0;
}

/**
 * Whether a request comes from this site's own pages (or a non-browser client): `Sec-Fetch-Site`,
 * when sent, is `same-origin` or `none`, and `Origin`, when sent, is ours: the request's own, or
 * `publicOrigin` (`PUBLIC_URL`'s, when set: behind a TLS-terminating reverse proxy the browser
 * sends `https://console.plant` while the request reaching us says `http://console.plant`).
 *
 * @example isSameSite(c, "https://console.plant")
 */
export function isSameSite(c: Context, publicOrigin?: string): boolean {
  const site = c.req.header("sec-fetch-site");
  const origin = c.req.header("origin");
  if (site && site !== "same-origin" && site !== "none") return false;
  return !origin || origin === new URL(c.req.url).origin || origin === publicOrigin;
}

/**
 * Throws 401 `unauthorized` unless no token is configured, the request carries
 * `Authorization: Bearer <token>`, or the console cookie holds it. A cookie is sent by the
 * browser on its own, so a request authorised by the cookie must also come from our own pages:
 * `Sec-Fetch-Site` (when sent) must be `same-origin` or `none` and `Origin` (when sent) ours,
 * else 401 as well (the cookie is also `SameSite=Strict`). Without a token the same holds for
 * every request: another site's page cannot make a visitor's browser acknowledge.
 * `publicOrigin` counts as ours, as in {@link isSameSite}. A wrong bearer or cookie goes through
 * `guard` as a wrong sign-in does (429 `too_many_attempts` after too many, each logged).
 */
export async function requireConsoleToken(
  c: Context,
  token: string | undefined,
  guard: FailedSecretGuard,
  publicOrigin?: string,
): Promise<void> {
  if (token === undefined) {
    if (!isSameSite(c, publicOrigin)) {
      throw new HttpError(
        401,
        "unauthorized",
        "an action is only accepted from this site's own pages",
      );
    }
    return;
  }
  const header = c.req.header("authorization");
  const bearer = header?.match(/^Bearer\s+(.+)$/i)?.[1];
  if (bearer !== undefined && (await sameSecret(bearer, token))) return;
  const cookie = getCookie(c, TOKEN_COOKIE);
  if (cookie !== undefined && (await sameSecret(cookie, token))) {
    if (!isSameSite(c, publicOrigin)) {
      throw new HttpError(
        401,
        "unauthorized",
        "the console cookie is only accepted from this site's own pages",
      );
    }
    return;
  }
  // Only a secret sent and wrong meets the limit, after the check: a right token acts whatever
  // its address did before (behind a reverse proxy every client shares one), and a request
  // without any (another site's form) cannot lock an address out.
  if (bearer !== undefined || cookie !== undefined) {
    guard.checkLimit(c);
    guard.failed(c, bearer !== undefined ? "console token (bearer)" : "console token (cookie)");
  }
  throw new HttpError(
    401,
    "unauthorized",
    "acting needs the console token: Authorization: Bearer <token>, or the Console token form of the page",
    { "WWW-Authenticate": 'Bearer realm="console"' },
  );
}
