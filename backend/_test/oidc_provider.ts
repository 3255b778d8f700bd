// Test helper: a real OpenID Connect provider (oidc-provider) on a free loopback port, with a user in each role, and its login walked over HTTP.
import { generateKeyPairSync, randomBytes } from "node:crypto";
import type { Server } from "node:http";
import type { ClientMetadata, Configuration } from "oidc-provider";
import { freePort } from "./free_port.ts";

/** The provider's people and their `roles` claim: one per role, one with none, one with a value no role maps. */
export const ACCOUNTS: Record<string, { name: string; roles?: string[] }> = {
  alice: { name: "Alice Admin", roles: ["admin"] },
  olga: { name: "Olga Operator", roles: ["operator", "staff"] },
  victor: { name: "Victor Viewer", roles: ["viewer"] },
  nora: { name: "Nora Norole" },
  uma: { name: "Uma Unmapped", roles: ["contractor"] },
};

export interface TestProvider {
  issuer: string;
  /** The console's client (confidential, client_secret_basic, PKCE required). */
  clientId: string;
  clientSecret: string;
  /** Another application registered at the same provider, with the same redirect address. */
  otherClientId: string;
  stop(): Promise<void>;
}

export interface TestProviderOptions {
  /** The backend's `${PUBLIC_URL}/auth/callback`. */
  redirectUri: string;
  postLogoutRedirectUri?: string;
  /** false: claims only from userinfo, the ID token holds just `sub` (as strict providers do). */
  rolesInIdToken?: boolean;
  /** A port chosen beforehand (a provider that comes up after the backend); default a free one. */
  port?: number;
}

/**
 * Starts oidc-provider on http://127.0.0.1:<free port>. Its development login page takes any
 * password: the login name picks the account from ACCOUNTS.
 *
 * @example const op = await startOidcProvider({ redirectUri: `${base}/auth/callback` }); await op.stop();
 */
/**
 * Runs `make` without oidc-provider's start-up notices: it names Node 22 as its minimum under our
 * Node 20 floor (every test here passes on Node 20) and warns that the in-memory adapter and its
 * own login pages are for development, which is what a test provider is. Its other output stays.
 */
async function withoutProviderNotices<T>(make: () => Promise<T>): Promise<T> {
  const warn = console.warn;
  console.warn = (...args: unknown[]) => {
    if (!String(args[0]).startsWith("oidc-provider WARNING:")) warn(...args);
  };
  try {
    return await make();
  } finally {
    console.warn = warn;
  }
}

export async function startOidcProvider(options: TestProviderOptions): Promise<TestProvider> {
  const port = options.port ?? (await freePort());
  const issuer = `http://127.0.0.1:${port}`;
  const clientSecret = randomBytes(24).toString("base64url");
  const signingKey = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({
    format: "jwk",
  });
  const client = (client_id: string, client_secret: string): ClientMetadata => ({
    client_id,
    client_secret,
    redirect_uris: [options.redirectUri],
    post_logout_redirect_uris: options.postLogoutRedirectUri ? [options.postLogoutRedirectUri] : [],
    grant_types: ["authorization_code"],
    response_types: ["code"],
    token_endpoint_auth_method: "client_secret_basic",
  });
  const configuration: Configuration = {
    clients: [
      client("console", clientSecret),
      client("other-app", randomBytes(24).toString("base64url")),
    ],
    jwks: { keys: [{ ...signingKey, kid: "test-key", use: "sig", alg: "RS256" }] as never },
    cookies: { keys: [randomBytes(32).toString("hex")] },
    pkce: { required: () => true },
    claims: {
      openid: ["sub"],
      profile: ["name", "preferred_username"],
      email: ["email", "email_verified"],
      roles: ["roles"],
    },
    // Off: the ID token carries every claim its scopes grant, as most company providers do.
    conformIdTokenClaims: !(options.rolesInIdToken ?? true),
    features: { devInteractions: { enabled: true } },
    async findAccount(_ctx, id) {
      const account = ACCOUNTS[id];
      if (!account) return undefined;
      return {
        accountId: id,
        claims: () => ({
          sub: id,
          name: account.name,
          preferred_username: id,
          email: `${id}@example.test`,
          email_verified: true,
          ...(account.roles ? { roles: account.roles } : {}),
        }),
      };
    },
  };
  const provider = await withoutProviderNotices(async () => {
    const { default: Provider } = await import("oidc-provider");
    return new Provider(issuer, configuration);
  });
  const server: Server = await new Promise((resolve, reject) => {
    const s = provider.listen(port, "127.0.0.1", () => resolve(s));
    s.once("error", reject);
  });
  return {
    issuer,
    clientId: "console",
    clientSecret,
    otherClientId: "other-app",
    async stop() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Cookies per origin, enough for a sign-in over plain HTTP (paths and expiry dates ignored). */
export function createCookieJar() {
  const byOrigin = new Map<string, Map<string, string>>();
  const cookiesOf = (url: string | URL) => {
    const origin = new URL(url).origin;
    if (!byOrigin.has(origin)) byOrigin.set(origin, new Map());
    return byOrigin.get(origin) as Map<string, string>;
  };
  return {
    /** The `Cookie` header for a request to `url`. */
    header(url: string | URL): string {
      return [...cookiesOf(url)].map(([k, v]) => `${k}=${v}`).join("; ");
    },
    /** Keeps the cookies `response` (from `url`) set, forgets those it cleared. */
    store(url: string | URL, response: Response): void {
      const jar = cookiesOf(url);
      for (const line of response.headers.getSetCookie()) {
        const [pair, ...attributes] = line.split(";");
        const at = pair.indexOf("=");
        const [name, value] = [pair.slice(0, at).trim(), pair.slice(at + 1).trim()];
        const cleared = value === "" || attributes.some((a) => /^\s*max-age=0\s*$/i.test(a));
        if (cleared) jar.delete(name);
        else jar.set(name, value);
      }
    },
    get(url: string | URL, name: string): string | undefined {
      return cookiesOf(url).get(name);
    },
    set(url: string | URL, name: string, value: string): void {
      cookiesOf(url).set(name, value);
    },
    delete(url: string | URL, name: string): void {
      cookiesOf(url).delete(name);
    },
  };
}
export type CookieJar = ReturnType<typeof createCookieJar>;

/**
 * Signs in at the provider as `login`, as a browser would: follows its redirects and submits its
 * own login and consent forms, until it redirects to an address starting with `stopAt` (the
 * backend's callback), which is returned unvisited.
 */
export async function signInAtProvider(
  authorizationUrl: string,
  login: string,
  stopAt: string,
  jar: CookieJar,
): Promise<URL> {
  let url = new URL(authorizationUrl);
  let body: URLSearchParams | undefined;
  for (let step = 0; step < 20; step++) {
    const response = await fetch(url, {
      method: body ? "POST" : "GET",
      body,
      headers: { cookie: jar.header(url) },
      redirect: "manual",
      signal: AbortSignal.timeout(10_000),
    });
    jar.store(url, response);
    const location = response.headers.get("location");
    if (response.status >= 300 && response.status < 400 && location) {
      await response.body?.cancel();
      const next = new URL(location, url);
      if (next.href.startsWith(stopAt)) return next;
      [url, body] = [next, undefined];
      continue;
    }
    const page = await response.text();
    const action = page.match(/<form[^>]*action="([^"]+)"/)?.[1];
    const prompt = page.match(/name="prompt" value="(login|consent)"/)?.[1];
    if (response.status !== 200 || !action || !prompt) {
      throw new Error(
        `the provider answered ${response.status} at ${url.href}: ${page.slice(0, 500)}`,
      );
    }
    url = new URL(action.replace(/&amp;/g, "&"), url);
    body = new URLSearchParams(
      prompt === "login" ? { prompt, login, password: "any password" } : { prompt },
    );
  }
  throw new Error(`no redirect to ${stopAt} after 20 steps`);
}
