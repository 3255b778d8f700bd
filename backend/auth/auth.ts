// Who is asking and what they may do: identities from API tokens and session cookies, role checks, the gate in front of every route.
import type { Context, MiddlewareHandler } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import {
  type ApiToken,
  type AuthMode,
  hasRole,
  hostRefusal,
  type Identity,
  type Role,
} from "../../contracts/auth.ts";
import { HttpError } from "../../contracts/error.ts";
import type { Logger } from "../../telemetry/logger.ts";
import { isSameSite, requireConsoleToken } from "../incidents/console_auth.ts";
import type { EndedSessions } from "./ended_sessions.ts";
import { createFailureLimiter, type FailureLimiter } from "./failure_limiter.ts";
import {
  createSessionCodec,
  SESSION_COOKIE,
  type SessionCodec,
  tokenFingerprint,
} from "./session.ts";
import { keepSignInCheck } from "./still_signed_in.ts";
import type { TokenStore } from "./token_store.ts";

export interface AuthOptions {
  mode: AuthMode;
  /** API tokens (`token` mode; in `oidc` mode, for scripts, when a file is given). */
  tokens?: TokenStore;
  sessionSecret?: string;
  sessionMaxAgeMs?: number;
  /** `none` mode only: acting needs this shared token, as before sign-in existed. */
  consoleToken?: string;
  /**
   * `PUBLIC_URL`: the console's address as browsers reach it (behind a TLS-terminating reverse
   * proxy, the request's own URL says http). A cookie-authorised request from its origin counts
   * as this site's, and its cookies (the session's, the console token's) get `Secure` when it is
   * https.
   */
  publicUrl?: string;
  /** Cookies get `Secure` (default: when `publicUrl`, else the request, is https). */
  secureCookies?: boolean;
  now?: () => number;
  log?: Logger;
  limiter?: FailureLimiter;
  /**
   * Where signing out is recorded: a session's cookie holds until its expiry on its own, so
   * without this a copy of it kept elsewhere goes on working after its holder signed out.
   */
  endedSessions?: EndedSessions;
}

/** Paths anyone may reach in `token` and `oidc` mode: probes, sign-in, the console's files, the engine's signed alerts. */
function isPublic(method: string, path: string): boolean {
  return (
    path === "/health" ||
    path.startsWith("/health/") ||
    path === "/signin" ||
    path === "/signout" ||
    path.startsWith("/auth/") ||
    path.startsWith("/assets/") ||
    // The engine's alerts carry their own machine credentials (Standard Webhooks signatures).
    (method === "POST" && path === "/api/v1/alert")
  );
}

/** The client's address for rate limiting: the socket's peer (Node or Deno), never a header. */
export function clientAddress(c: Context): string {
  // biome-ignore lint/suspicious/noExplicitAny: the runtime's own binding object
  const env = c.env as any;
  return env?.incoming?.socket?.remoteAddress ?? env?.remoteAddr?.hostname ?? "unknown";
}

/** A browser's form submission (what the console's forms send), not a script's JSON. */
function isFormPost(c: Context): boolean {
  const type = c.req.header("content-type") ?? "";
  return (
    c.req.method === "POST" &&
    /^\s*(application\/x-www-form-urlencoded|multipart\/form-data)\b/i.test(type)
  );
}

/** A request for server-sent events (an `EventSource` asks with this `Accept`), not a page. */
function wantsEventStream(c: Context): boolean {
  return /\btext\/event-stream\b/i.test(c.req.header("accept") ?? "");
}

/**
 * The page a console form was sent from: its Referer's path when it is this site's (the
 * request's origin or `publicOrigin`), else `/`.
 */
function formPage(c: Context, publicOrigin: string | undefined): string {
  const referer = c.req.header("referer");
  if (!referer || !URL.canParse(referer)) return "/";
  const from = new URL(referer);
  const ours = from.origin === new URL(c.req.url).origin || from.origin === publicOrigin;
  return ours ? safeNext(from.pathname + from.search) : "/";
}

/**
 * Where to go after signing in: a path on this site, never another origin, and nothing a
 * `Location` header cannot carry (whitespace, control characters: `/%00` made the redirect throw
 * after the session cookie was set). Anything else is `/`.
 *
 * @example safeNext("/quality?weeks=4") === "/quality?weeks=4"; safeNext("//evil.example") === "/"
 */
export function safeNext(next: string | undefined): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing them is the point
  return next && /^\/(?![/\\])[^\s\x00-\x1f\x7f]*$/.test(next) ? next : "/";
}

/** `PUBLIC_URL`'s origin; a RangeError names it when it is no http(s) URL. */
function originOf(publicUrl: string | undefined): string | undefined {
  if (publicUrl === undefined) return undefined;
  const url = URL.canParse(publicUrl) ? new URL(publicUrl) : undefined;
  if (!url || (url.protocol !== "https:" && url.protocol !== "http:")) {
    throw new RangeError(`'PUBLIC_URL' must be an http(s) URL, got ${JSON.stringify(publicUrl)}`);
  }
  return url.origin;
}

/**
 * The headers of every HTML page the backend answers outside the console's routes (sign-in, the
 * provider's refusals): data only, no inline script, no framing, forms stay on this site.
 */
export const PAGE_HEADERS = {
  "Content-Security-Policy":
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "same-origin",
  "Cache-Control": "no-store",
};

const ANONYMOUS: Identity = {
  subject: "anonymous",
  name: "anonymous",
  role: "admin",
  method: "none",
};

/**
 * Builds the backend's auth. `middleware` goes in front of every route: it finds who is asking
 * (bearer API token, else session cookie) and, in `token` and `oidc` mode, refuses anyone else
 * outside the public paths (a console page redirects to `/signin`, the API and event streams
 * answer `401 unauthenticated`). Routes that act call `require(c, role)`.
 *
 * @example const auth = createAuth({ mode: "token", tokens }); app.use(auth.middleware);
 */
export function createAuth(options: AuthOptions) {
  const { mode, tokens, consoleToken, log } = options;
  const now = options.now ?? Date.now;
  const maxAgeMs = options.sessionMaxAgeMs ?? 12 * 3_600_000;
  const sessions: SessionCodec = createSessionCodec({ secret: options.sessionSecret, now });
  const limiter = options.limiter ?? createFailureLimiter({ now });
  const publicOrigin = originOf(options.publicUrl);
  const publicHost = publicOrigin ? new URL(publicOrigin).hostname : undefined;
  const found = new WeakMap<Request, { identity: Identity; byCookie: boolean }>();

  /**
   * Refuses a client that failed too often; call once a secret it sent proved wrong, before
   * counting it (a right one is let in whatever its address did before).
   */
  function checkLimit(c: Context): void {
    const wait = limiter.blockedFor(clientAddress(c));
    if (wait > 0) {
      throw new HttpError(
        429,
        "too_many_attempts",
        `too many failed sign-ins from this address: try again in ${wait} s`,
        { "Retry-After": String(wait) },
      );
    }
  }

  /** Records a failed sign-in (rate limit and log): a secret was sent and it was wrong. */
  function failed(c: Context, how: string): void {
    const address = clientAddress(c);
    const failures = limiter.fail(address);
    log?.warn("sign-in refused", { how, address, failures_in_window: failures, path: c.req.path });
  }

  /**
   * Logs a sign-in refused before any secret was checked (another site's form, a provider's
   * answer without this browser's sign-in), without counting it: another site's page can make a
   * visitor's browser send those, and counting them would lock the visitor's address out.
   */
  function refused(c: Context, how: string): void {
    log?.warn("sign-in refused", { how, address: clientAddress(c), path: c.req.path });
  }

  /**
   * Whether a request comes from this site's own pages (or a non-browser client): as
   * {@link isSameSite}, with `PUBLIC_URL`'s origin counting as ours.
   */
  function sameSite(c: Context): boolean {
    return isSameSite(c, publicOrigin);
  }

  async function fromBearer(c: Context, bearer: string): Promise<Identity> {
    const t = tokens ? await tokens.find(bearer) : undefined;
    if (!t) {
      // Only a wrong token meets the limit: behind a reverse proxy every client shares one
      // address, and one script's stale token must not lock the valid ones out.
      checkLimit(c);
      failed(c, "bearer token");
      throw new HttpError(401, "unauthenticated", "the bearer token is unknown or expired", {
        "WWW-Authenticate": 'Bearer realm="backend", error="invalid_token"',
      });
    }
    return { subject: `token:${t.name}`, name: t.name, role: t.role, method: "token" };
  }

  /** The identity a session cookie's value holds, while it holds. */
  async function fromSession(value: string | undefined): Promise<Identity | undefined> {
    const session = await sessions.open(value);
    if (!session) return undefined;
    if (await options.endedSessions?.isEnded(session.sid)) return undefined;
    if (session.token !== undefined) {
      // A session opened with a token ends when the token is removed or expires, or is replaced
      // by another under the same name (the fingerprint differs). A session sealed before
      // sessions carried the fingerprint cannot tell, so it ends too.
      if (session.fingerprint === undefined) return undefined;
      const t = tokens ? await tokens.byName(session.token) : undefined;
      if (!t || tokenFingerprint(t.sha256) !== session.fingerprint) return undefined;
      return { subject: session.sub, name: session.name, role: t.role, method: "token" };
    }
    if (session.method !== "oidc" || mode !== "oidc") return undefined;
    return { subject: session.sub, name: session.name, role: session.role, method: "oidc" };
  }

  const middleware: MiddlewareHandler = async function authenticate(c, next) {
    if (mode === "none") {
      const refusal = hostRefusal(c.req.header("host"), publicHost);
      if (refusal) throw new HttpError(403, "host_not_allowed", refusal);
      found.set(c.req.raw, { identity: ANONYMOUS, byCookie: false });
      return next();
    }
    const bearer = c.req
      .header("authorization")
      ?.match(/^Bearer\s+(.+)$/i)?.[1]
      ?.trim();
    if (bearer !== undefined) {
      const identity = await fromBearer(c, bearer);
      found.set(c.req.raw, { identity, byCookie: false });
      // An event stream outlives the request: it asks again whether the token is still there.
      keepSignInCheck(c, async function bearerStillValid() {
        const t = tokens ? await tokens.find(bearer) : undefined;
        return t?.name === identity.name;
      });
      return next();
    }
    const cookie = getCookie(c, SESSION_COOKIE);
    const identity = await fromSession(cookie);
    if (identity) {
      found.set(c.req.raw, { identity, byCookie: true });
      keepSignInCheck(c, async function sessionStillValid() {
        return (await fromSession(cookie)) !== undefined;
      });
      return next();
    }
    if (cookie !== undefined) deleteCookie(c, SESSION_COOKIE, { path: "/" });
    if (isPublic(c.req.method, c.req.path)) return next();
    // An event stream (the Now page's live rows) is no page: a browser's EventSource given the
    // sign-in page instead gives up for good, unable to say why. A 401 lets its script say so.
    if (
      !c.req.path.startsWith("/api/") &&
      (c.req.method === "GET" || c.req.method === "HEAD") &&
      !wantsEventStream(c)
    ) {
      const next = encodeURIComponent(c.req.path + (new URL(c.req.url).search || ""));
      return c.redirect(`/signin?next=${next}`, 303);
    }
    // A console form sent after the session ended: to sign-in, saying so, then back to the page
    // the form was on (its Referer, when it is this site's), not an API error.
    if (!c.req.path.startsWith("/api/") && isFormPost(c)) {
      const next = encodeURIComponent(formPage(c, publicOrigin));
      return c.redirect(`/signin?next=${next}&ended=1`, 303);
    }
    throw new HttpError(401, "unauthenticated", "sign in first: a bearer API token or a session", {
      "WWW-Authenticate": 'Bearer realm="backend"',
    });
  };

  /** Who is asking, when known. */
  function identity(c: Context): Identity | undefined {
    return found.get(c.req.raw)?.identity;
  }

  /**
   * The identity allowed to act with `role`, or 401 `unauthenticated` / 403 `forbidden`. A request
   * authorised by the session cookie (which browsers send on their own) must come from this site's
   * own pages, else 403 `cross_site`. In `none` mode: today's rule (`CONSOLE_TOKEN` when set).
   */
  async function require(c: Context, role: Role): Promise<Identity> {
    if (mode === "none") {
      await requireConsoleToken(c, consoleToken, { checkLimit, failed }, publicOrigin);
      return ANONYMOUS;
    }
    const seen = found.get(c.req.raw);
    if (!seen) throw new HttpError(401, "unauthenticated", "sign in first");
    if (!hasRole(seen.identity.role, role)) {
      throw new HttpError(
        403,
        "forbidden",
        `this needs the ${role} role; ${seen.identity.name} has ${seen.identity.role}`,
      );
    }
    if (seen.byCookie && !sameSite(c)) {
      throw new HttpError(403, "cross_site", "a signed-in action is only accepted from this site");
    }
    return seen.identity;
  }

  /**
   * Whether a cookie set in answer to `c` (the session's, the console token's) gets `Secure`:
   * `secureCookies` when given, else whether `PUBLIC_URL` (without one, the request's own URL) is
   * https. Behind a TLS-terminating proxy the request says http while browsers use https.
   */
  function secureCookie(c: Context): boolean {
    return options.secureCookies ?? new URL(publicOrigin ?? c.req.url).protocol === "https:";
  }

  /** Whether the asking identity has `role` (for pages hiding what it cannot do). */
  function can(c: Context, role: Role): boolean {
    const seen = found.get(c.req.raw);
    return seen !== undefined && hasRole(seen.identity.role, role);
  }

  /**
   * Starts a session for `identity` (a response cookie); with `token`, the tokens file's entry it
   * signed in with, the session lasts while that very token does.
   */
  async function startSession(c: Context, identity: Identity, token?: ApiToken): Promise<void> {
    const value = await sessions.seal(identity, maxAgeMs, token);
    setCookie(c, SESSION_COOKIE, value, {
      path: "/",
      httpOnly: true,
      // Lax: the first page after a provider's redirect must see the session; acting is
      // guarded by the same-site check in `require`.
      sameSite: "Lax",
      secure: secureCookie(c),
      maxAge: Math.floor(maxAgeMs / 1000),
    });
    log?.info("signed in", {
      subject: identity.subject,
      role: identity.role,
      how: identity.method,
    });
  }

  /**
   * Signs the request's session out: its cookie is deleted and, with `endedSessions`, the session
   * is recorded as ended, so that a copy of the cookie stops working too.
   */
  async function endSession(c: Context): Promise<void> {
    const session = await sessions.open(getCookie(c, SESSION_COOKIE));
    if (session) await options.endedSessions?.end(session.sid, new Date(session.exp));
    deleteCookie(c, SESSION_COOKIE, { path: "/" });
  }

  /**
   * The name to record for an action: the signed-in identity's, or under `none` the name typed
   * into the form or body (nobody is verified there).
   */
  function actor(who: Identity, typed: string | undefined): Identity {
    return who.method === "none" ? { ...who, name: typed?.trim() || "anonymous" } : who;
  }

  /**
   * `body` with the signed-in identity's name in `field` (what the record shows as who acted);
   * under `none` the body is left as typed. Anything not a JSON object is left for the
   * route's own validation to refuse.
   */
  function named(body: unknown, field: string, who: Identity): unknown {
    if (who.method === "none" || typeof body !== "object" || body === null || Array.isArray(body))
      return body;
    return { ...body, [field]: who.name };
  }

  return {
    mode,
    named,
    middleware,
    identity,
    require,
    can,
    actor,
    startSession,
    endSession,
    checkLimit,
    failed,
    refused,
    sameSite,
    secureCookie,
    tokens,
  };
}

export type Auth = ReturnType<typeof createAuth>;
