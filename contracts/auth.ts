// Who may do what: the backend's sign-in modes, roles, identities, the API tokens file and the loopback rule.
import * as v from "valibot";

/** How people sign in to the backend (`AUTH_MODE`). */
export const AUTH_MODES = ["none", "token", "oidc"] as const;
export type AuthMode = (typeof AUTH_MODES)[number];

/** Roles, weakest first: each can do everything the ones before it can. */
export const ROLES = ["viewer", "operator", "admin"] as const;
export type Role = (typeof ROLES)[number];

/** Whether `have` includes everything `need` may do. */
export function hasRole(have: Role, need: Role): boolean {
  return ROLES.indexOf(have) >= ROLES.indexOf(need);
}

/**
 * Who is acting: `subject` is stable (an API token's `token:<name>`, an OIDC provider's `sub`),
 * `name` is for people to read, `method` says how they signed in. Under `AUTH_MODE=none` nobody is
 * verified: the subject is `anonymous` and the name is whatever was typed.
 */
export interface Identity {
  subject: string;
  name: string;
  role: Role;
  method: AuthMode;
}

/** One entry of `API_TOKENS_FILE`: the token itself is never stored, only its SHA-256. */
export const apiTokenSchema = v.strictObject({
  name: v.pipe(v.string(), v.regex(/^[\w.@-]{1,100}$/, "must be 1-100 of A-Z a-z 0-9 _ . @ -")),
  role: v.picklist(ROLES, `must be one of ${ROLES.join("|")}`),
  sha256: v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/, "must be 64 lowercase hex digits")),
  expires_at: v.optional(v.pipe(v.string(), v.isoTimestamp("must be an ISO 8601 timestamp"))),
});
export type ApiToken = v.InferOutput<typeof apiTokenSchema>;

/** `API_TOKENS_FILE`: a JSON array of tokens, names unique. */
export const apiTokensFileSchema = v.pipe(
  v.array(apiTokenSchema),
  v.check(
    (tokens) => new Set(tokens.map((t) => t.name)).size === tokens.length,
    "token names must be unique",
  ),
);

/**
 * Parses the tokens file's text; throws an Error naming the entry and field that is wrong.
 *
 * @example parseApiTokens('[{"name":"ci","role":"viewer","sha256":"…"}]')
 */
export function parseApiTokens(text: string): ApiToken[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`not JSON: ${(error as Error).message}`);
  }
  const parsed = v.safeParse(apiTokensFileSchema, json);
  if (parsed.success) return parsed.output;
  const issue = parsed.issues[0];
  const path = v.getDotPath(issue);
  throw new Error(path ? `entry ${path}: ${issue.message}` : issue.message);
}

/** Hex SHA-256 of a token, as the tokens file stores it. */
export async function tokenDigest(token: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Whether a listen address only accepts connections from this machine. */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, "");
  return (
    h === "localhost" ||
    h === "::1" ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) ||
    /^::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h)
  );
}

/**
 * Parses `OIDC_ROLE_MAP` (`claim value=role,...`); throws naming the bad entry.
 *
 * @example parseRoleMap("plant-ops=operator,plant-admins=admin")
 */
export function parseRoleMap(text: string): Map<string, Role> {
  const map = new Map<string, Role>();
  for (const entry of text.split(",")) {
    if (entry.trim() === "") continue;
    const at = entry.lastIndexOf("=");
    const value = entry.slice(0, at).trim();
    const role = entry.slice(at + 1).trim() as Role;
    if (at < 1 || value === "" || !ROLES.includes(role)) {
      throw new Error(
        `'${entry.trim()}' must be claim-value=role with a role of ${ROLES.join("|")}`,
      );
    }
    map.set(value, role);
  }
  return map;
}

/**
 * The strongest role a claim grants (a string, or an array of strings as groups usually are);
 * `undefined` when the claim is absent or maps to no role: such a person is refused.
 */
export function roleFromClaim(claim: unknown, map: Map<string, Role>): Role | undefined {
  const values = typeof claim === "string" ? [claim] : Array.isArray(claim) ? claim : [];
  let best: Role | undefined;
  for (const value of values) {
    if (typeof value !== "string") continue;
    const role = map.get(value);
    if (role && (!best || hasRole(role, best))) best = role;
  }
  return best;
}

/**
 * Why a request that only programs send (frames, alerts) is refused as coming from a web page, or
 * `undefined`. Browsers name the page behind every POST (`Origin`, and `Sec-Fetch-Site` other than
 * `none`); producers and services send neither. Without a token or a signature, a page of any
 * site could otherwise post there: a text/plain body needs no CORS approval, and a name made to
 * resolve to 127.0.0.1 (DNS rebinding) passes every same-site check.
 *
 * @example webPageRefusal(c.req.header("origin"), c.req.header("sec-fetch-site"), "set INGEST_TOKEN")
 */
export function webPageRefusal(
  origin: string | undefined,
  fetchSite: string | undefined,
  remedy: string,
): string | undefined {
  if (origin === undefined && (fetchSite === undefined || fetchSite === "none")) return undefined;
  const page =
    origin === undefined
      ? `a page (Sec-Fetch-Site ${fetchSite})`
      : `a page of ${JSON.stringify(origin.slice(0, 128))}`;
  return `a web page's request (${page}) is not taken here without a token: programs send none of Origin and Sec-Fetch-Site; ${remedy}`;
}

/**
 * Why a request to a service without sign-in is refused for the name it was addressed to, or
 * `undefined` when that name is this machine's loopback (or `alsoHost`, `PUBLIC_URL`'s). Such a
 * service listens on the loopback only, yet a web page can still reach it: its own name made to
 * resolve to 127.0.0.1 (DNS rebinding) turns it into the page's own origin, past every same-site
 * check, while its `Host` header still names the page's site. A request without `Host` (HTTP/1.0,
 * in-process) is no browser's and passes.
 *
 * @example hostRefusal(c.req.header("host"), "console.plant")
 */
export function hostRefusal(host: string | undefined, alsoHost?: string): string | undefined {
  if (host === undefined || host === "") return undefined;
  let name: string | undefined;
  try {
    name = new URL(`http://${host}`).hostname;
  } catch {
    name = undefined;
  }
  if (name !== undefined && (isLoopbackHost(name) || name === alsoHost?.toLowerCase())) {
    return undefined;
  }
  const shown = host.length > 128 ? `${host.slice(0, 128)}...` : host;
  return `without sign-in only requests addressed to this machine (localhost, 127.0.0.1, [::1]${alsoHost ? `, ${alsoHost}` : ""}) are answered, not Host ${JSON.stringify(shown)}`;
}

/** What the backend's auth settings need, in words; `undefined` when they hang together. */
export function authConfigProblem(config: {
  AUTH_MODE: AuthMode;
  HOST: string;
  API_TOKENS_FILE?: string;
  OIDC_ISSUER?: string;
  OIDC_CLIENT_ID?: string;
  PUBLIC_URL?: string;
}): string | undefined {
  switch (config.AUTH_MODE) {
    case "none":
      return isLoopbackHost(config.HOST)
        ? undefined
        : `AUTH_MODE=none lets anyone who reaches the backend read and act, so it is only allowed on a loopback address, and HOST is ${config.HOST}: set AUTH_MODE=token with API_TOKENS_FILE (npm run token makes one), or AUTH_MODE=oidc with OIDC_ISSUER, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET and PUBLIC_URL, or HOST=127.0.0.1`;
    case "token":
      return config.API_TOKENS_FILE
        ? undefined
        : "AUTH_MODE=token needs API_TOKENS_FILE (a JSON file of hashed tokens; npm run token makes one)";
    case "oidc": {
      const missing = (["OIDC_ISSUER", "OIDC_CLIENT_ID", "PUBLIC_URL"] as const).filter(
        (k) => !config[k],
      );
      if (missing.length > 0) return `AUTH_MODE=oidc needs ${missing.join(", ")}`;
      // Checked here, before the database is opened, not first when sign-in is set up.
      return (
        plainHttpProblem("OIDC_ISSUER", config.OIDC_ISSUER as string) ??
        plainHttpProblem("PUBLIC_URL", config.PUBLIC_URL as string)
      );
    }
  }
}

/**
 * Why `value` is no address for sign-in (the provider's, or the console's that the provider
 * redirects browsers back to): it must be https, plain http only on a loopback host, where nobody
 * between could read the codes and session cookies. `undefined` when it is fine.
 */
function plainHttpProblem(name: string, value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `'${name}' must be a URL, got ${JSON.stringify(value)}`;
  }
  if (url.protocol === "https:" || (url.protocol === "http:" && isLoopbackHost(url.hostname))) {
    return undefined;
  }
  return `'${name}' must be https (http only on a loopback address), got ${value}`;
}
