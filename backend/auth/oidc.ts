// Sign-in with the company's OpenID Connect provider: authorization code + PKCE through openid-client, ending in a session.

import { type Context, Hono } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { html } from "hono/html";
import * as client from "openid-client";
import * as v from "valibot";
import { type Identity, isLoopbackHost, type Role, roleFromClaim } from "../../contracts/auth.ts";
import { HttpError } from "../../contracts/error.ts";
import type { Logger } from "../../telemetry/logger.ts";
import type { AuditRepository } from "../audit/audit_repository.ts";
import { type Auth, PAGE_HEADERS, safeNext } from "./auth.ts";
import { createSealer, hmacKey } from "./sealed_value.ts";

/** The cookie carrying one sign-in's state, nonce and PKCE verifier from `/auth/login` to `/auth/callback`. */
export const FLOW_COOKIE = "oidc_flow";
const FLOW_MAX_AGE_MS = 10 * 60_000;
/** Seconds openid-client waits for each request to the provider. */
const PROVIDER_TIMEOUT_S = 10;

export interface OidcOptions {
  auth: Auth;
  /** `OIDC_ISSUER`: https, or http on a loopback address (a provider on this machine, as in tests). */
  issuer: string;
  clientId: string;
  /** `OIDC_CLIENT_SECRET`; without it the console signs in as a public client (PKCE only). */
  clientSecret?: string;
  /** `PUBLIC_URL`: the provider sends people back to `${publicUrl}/auth/callback`. */
  publicUrl: string;
  roleClaim: string;
  roleMap: Map<string, Role>;
  /** `SESSION_SECRET`: signs the flow cookie (a key derived for that use only); unset, a random key per start. */
  secret?: string;
  log?: Logger;
  /** Where each sign-in is recorded (`session.signin`), as the token form records its own. */
  audit?: Pick<AuditRepository, "record">;
  now?: () => number;
  fetch?: typeof fetch;
}

const flowSchema = v.object({
  state: v.string(),
  nonce: v.string(),
  verifier: v.string(),
  next: v.string(),
  exp: v.number(),
});
type Flow = v.InferOutput<typeof flowSchema>;

/**
 * The `/auth` routes of `AUTH_MODE=oidc` — `GET /auth/login?next=/path` sends the browser to the
 * provider, `GET /auth/callback` checks its answer and starts a session — and `endSessionUrl()`,
 * the provider's sign-out page when it has one. The provider is asked for its metadata on the
 * first sign-in, not at start-up, so the backend starts while the provider is down; a failed
 * discovery is asked again on the next sign-in.
 *
 * @example const oidc = createOidc({ auth, issuer, clientId, clientSecret, publicUrl, roleClaim, roleMap }); app.route("/auth", oidc.routes);
 */
export function createOidc(options: OidcOptions) {
  const { auth, clientId, roleClaim, roleMap, log } = options;
  const now = options.now ?? Date.now;
  const issuer = checkedUrl("OIDC_ISSUER", options.issuer);
  const publicUrl = checkedUrl("PUBLIC_URL", options.publicUrl).href.replace(/\/+$/, "");
  const redirectUri = `${publicUrl}/auth/callback`;
  const secure = publicUrl.startsWith("https:");
  // Sent only to the sign-in routes, as the browser sees their path.
  const flowPath = `${new URL(publicUrl).pathname.replace(/\/+$/, "")}/auth`;
  // Sealed as the session is, under a key of its own (HKDF), so neither cookie passes for the other.
  const flows = createSealer(hmacKey(options.secret, "oidc flow cookie"), flowSchema, now, 2048);
  const fetcher = options.fetch;
  let discovered: Promise<client.Configuration> | undefined;

  function configuration(): Promise<client.Configuration> {
    discovered ??= client
      .discovery(
        issuer,
        clientId,
        undefined,
        options.clientSecret ? client.ClientSecretBasic(options.clientSecret) : client.None(),
        {
          // Plain http only reaches checkedUrl's loopback providers.
          execute: issuer.protocol === "http:" ? [client.allowInsecureRequests] : [],
          timeout: PROVIDER_TIMEOUT_S,
          ...(fetcher
            ? {
                [client.customFetch]: (url: string, init: client.CustomFetchOptions) =>
                  fetcher(url, init as RequestInit),
              }
            : {}),
        },
      )
      .catch((error: unknown) => {
        discovered = undefined;
        log?.error("identity provider discovery failed", error, { issuer: issuer.href });
        throw new HttpError(
          502,
          "signin_failed",
          `the identity provider at ${issuer.origin} did not answer as expected; try again in a moment`,
        );
      });
    return discovered;
  }

  /** Counts a refused sign-in (a code from a sign-in this browser started) and says why. */
  function refused(c: Context, how: string, message: string): HttpError {
    // As for a token: only an answer that proved wrong is limited, after the check, so one
    // that passes is let in whatever its address did before (behind a reverse proxy every
    // browser shares one address).
    auth.checkLimit(c);
    auth.failed(c, `oidc: ${how}`);
    return new HttpError(401, "signin_failed", message);
  }

  /**
   * Refuses an answer that is not this browser's sign-in, without counting it: another site's
   * page (an image, a link) can send any browser here, and counting those would let it lock the
   * browser's address out of signing in.
   */
  function notOurs(c: Context, how: string, message: string): HttpError {
    auth.refused(c, `oidc: ${how}`);
    return new HttpError(401, "signin_failed", message);
  }

  const routes = new Hono();
  routes.use(async function noStore(c, next) {
    await next();
    c.header("Cache-Control", "no-store");
    // The callback's address holds the code: keep it out of the next page's Referer.
    c.header("Referrer-Policy", "no-referrer");
  });

  routes.get("/login", (c) =>
    answer(c, async function startSignIn() {
      const config = await configuration();
      const flow: Flow = {
        state: client.randomState(),
        nonce: client.randomNonce(),
        verifier: client.randomPKCECodeVerifier(),
        next: safeNext(c.req.query("next")),
        exp: now() + FLOW_MAX_AGE_MS,
      };
      const url = client.buildAuthorizationUrl(config, {
        redirect_uri: redirectUri,
        scope: scopeFor(config, roleClaim),
        state: flow.state,
        nonce: flow.nonce,
        code_challenge: await client.calculatePKCECodeChallenge(flow.verifier),
        code_challenge_method: "S256",
      });
      setCookie(c, FLOW_COOKIE, await flows.seal(flow), {
        path: flowPath,
        httpOnly: true,
        // Lax: the provider's redirect back is a top-level GET from its site.
        sameSite: "Lax",
        secure,
        maxAge: FLOW_MAX_AGE_MS / 1000,
      });
      return c.redirect(url.href, 302);
    }),
  );

  routes.get("/callback", (c) =>
    answer(c, async function finishSignIn() {
      const flow = await flows.open(getCookie(c, FLOW_COOKIE));
      deleteCookie(c, FLOW_COOKIE, { path: flowPath, secure });
      // Without our cookie or with another state, this answer belongs to another browser's
      // sign-in (login CSRF), or ours took over 10 minutes.
      if (!flow) {
        throw notOurs(
          c,
          "no flow cookie",
          "this sign-in was not started in this browser or took too long: sign in again",
        );
      }
      if (c.req.query("state") !== flow.state) {
        throw notOurs(
          c,
          "state mismatch",
          "this answer from the identity provider belongs to another sign-in: sign in again",
        );
      }
      const config = await configuration();
      const search = new URL(c.req.url).search;
      const said = c.req.query("error");
      if (said !== undefined && c.req.query("code") === undefined) {
        // The provider said no (the person cancelled, or it refused them): no secret was
        // tried, and anyone can start a sign-in and send such an answer, so it is not counted.
        const detail = said.slice(0, 200);
        throw notOurs(
          c,
          `provider answer: ${detail}`,
          `the identity provider's answer was refused: ${detail}`,
        );
      }
      let tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>;
      try {
        // Checks iss, aud, nonce, signature and expiry of the ID token; PKCE binds the code to us.
        tokens = await client.authorizationCodeGrant(config, new URL(redirectUri + search), {
          pkceCodeVerifier: flow.verifier,
          expectedState: flow.state,
          expectedNonce: flow.nonce,
          idTokenExpected: true,
        });
      } catch (error) {
        throw providerError(c, error);
      }
      const claims = tokens.claims() as client.IDToken;
      let info: Record<string, unknown> = claims;
      if (claimAt(claims, roleClaim) === undefined && config.serverMetadata().userinfo_endpoint) {
        try {
          info = {
            ...(await client.fetchUserInfo(config, tokens.access_token, claims.sub)),
            ...claims,
          };
        } catch (error) {
          throw providerError(c, error);
        }
      }
      const name = nameOf(info, claims.sub);
      const granted = claimAt(info, roleClaim);
      const role = roleFromClaim(granted, roleMap);
      if (!role) {
        // A real sign-in that is not let in: logged with who it was, not counted against the
        // address (one person retrying would lock out everyone behind the same proxy).
        auth.refused(c, `oidc: no role for ${claims.sub}`);
        throw new HttpError(
          403,
          "forbidden",
          `${name} signed in, but no role is granted here: the '${roleClaim}' claim ${describeClaim(granted)}, and the console maps only ${[...roleMap.keys()].join(", ") || "nothing"}; ask an administrator for access`,
        );
      }
      const identity: Identity = { subject: claims.sub, name, role, method: "oidc" };
      // Recorded before the session starts: a sign-in the audit cannot record sets no cookie.
      await options.audit?.record({
        action: "session.signin",
        target: `session:${identity.subject}`,
        actor: identity,
        at: new Date(now()),
      });
      await auth.startSession(c, identity);
      return c.redirect(safeNext(flow.next), 303);
    }),
  );

  /** A refused answer (401, counted) or an unreachable provider (502, not the client's fault). */
  function providerError(c: Context, error: unknown): HttpError {
    if (unreachable(error)) {
      log?.error("identity provider unreachable", error, { issuer: issuer.href });
      return new HttpError(
        502,
        "signin_failed",
        `the identity provider at ${issuer.origin} did not answer; try again in a moment`,
      );
    }
    const detail = refusalReason(error);
    return refused(
      c,
      `provider answer: ${detail}`,
      `the identity provider's answer was refused: ${detail}`,
    );
  }

  /**
   * The provider's sign-out page, sending people back to `postLogoutRedirectUri` (registered at
   * the provider), or `undefined` when it has none or cannot be reached.
   */
  async function endSessionUrl(
    postLogoutRedirectUri = `${publicUrl}/signin`,
  ): Promise<string | undefined> {
    try {
      const config = await configuration();
      if (!config.serverMetadata().end_session_endpoint) return undefined;
      return client.buildEndSessionUrl(config, {
        client_id: clientId,
        post_logout_redirect_uri: postLogoutRedirectUri,
      }).href;
    } catch {
      return undefined;
    }
  }

  return { routes, endSessionUrl };
}

export type Oidc = ReturnType<typeof createOidc>;

/** Parses `value` as an http(s) URL, http only on a loopback host; a RangeError names `name`. */
function checkedUrl(name: string, value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new RangeError(`'${name}' must be a URL, got ${JSON.stringify(value)}`);
  }
  const loopback = isLoopbackHost(url.hostname);
  if (url.protocol !== "https:" && !(url.protocol === "http:" && loopback)) {
    throw new RangeError(`'${name}' must be https (http only on a loopback address), got ${value}`);
  }
  return url;
}

/** openid profile email, and a scope named after the role claim when the provider offers one (`roles`, `groups`). */
function scopeFor(config: client.Configuration, roleClaim: string): string {
  const offered = config.serverMetadata().scopes_supported ?? [];
  return ["openid", "profile", "email", ...(offered.includes(roleClaim) ? [roleClaim] : [])].join(
    " ",
  );
}

/** A claim by name, or by dotted path for nested ones such as Keycloak's `realm_access.roles`. */
function claimAt(claims: Record<string, unknown>, name: string): unknown {
  if (Object.hasOwn(claims, name)) return claims[name];
  let at: unknown = claims;
  for (const key of name.split(".")) {
    at =
      at !== null && typeof at === "object" && Object.hasOwn(at, key)
        ? (at as Record<string, unknown>)[key]
        : undefined;
  }
  return at;
}

/** The name a signed-in person acts under: the provider's name, username or email, else the subject. */
export function nameOf(info: Record<string, unknown>, sub: string): string {
  const name = [info.name, info.preferred_username, info.email].find(
    (x): x is string => typeof x === "string" && x.trim() !== "",
  );
  // The name travels in the session cookie, which must stay small: 200 characters, never cut
  // inside a character (half an emoji is no text a name can be stored as).
  const cut = (name ?? sub).slice(0, 200);
  return /[\uD800-\uDBFF]$/.test(cut) ? cut.slice(0, -1) : cut;
}

function describeClaim(value: unknown): string {
  if (value === undefined) return "is absent";
  const text = JSON.stringify(value);
  return `holds ${text.length > 200 ? `${text.slice(0, 200)}…` : text}`;
}

/** Errors meaning the provider could not be reached or answered nonsense, not that it said no. */
function unreachable(error: unknown): boolean {
  if (error instanceof TypeError) return true; // fetch: connection refused, DNS, reset
  if (error instanceof DOMException)
    return error.name === "TimeoutError" || error.name === "AbortError";
  const code = (error as { code?: string }).code;
  return code === "OAUTH_RESPONSE_IS_NOT_CONFORM" || code === "OAUTH_RESPONSE_IS_NOT_JSON";
}

/** Why openid-client refused an answer, in the provider's words when it gave some. */
function refusalReason(error: unknown): string {
  if (
    error instanceof client.AuthorizationResponseError ||
    error instanceof client.ResponseBodyError
  ) {
    return error.error_description ? `${error.error} (${error.error_description})` : error.error;
  }
  // openid-client's own message is generic ("invalid response encountered"); the cause says what.
  const { message, cause } = error as Error;
  return cause instanceof Error ? cause.message : message;
}

/** Runs a route; an HttpError goes to a browser as a small page, to others as JSON (via `app.onError`). */
async function answer(c: Context, work: () => Promise<Response>): Promise<Response> {
  try {
    return await work();
  } catch (error) {
    if (!(error instanceof HttpError) || !c.req.header("accept")?.includes("text/html"))
      throw error;
    // The sign-in page's headers: no framing (clickjacking), no sniffing. The routes' middleware
    // then keeps the callback's code out of any Referer.
    for (const [k, v] of Object.entries(PAGE_HEADERS)) c.header(k, v);
    return c.html(errorPage(error), error.status as 401, error.headers);
  }
}

function errorPage(error: HttpError) {
  const title = error.status === 403 ? "No access" : "Sign-in failed";
  // hono/html escapes every interpolated value.
  return html`<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>${title} · anomaly-stream</title>
    <link rel="icon" href="data:," />
    <link rel="stylesheet" href="/assets/console.css" />
  </head>
  <body>
    <main id="main">
      <h1>${title}</h1>
      <p data-error="${error.code}">${error.message}</p>
      <p><a href="/signin">Back to sign-in</a></p>
    </main>
  </body>
</html>`;
}
