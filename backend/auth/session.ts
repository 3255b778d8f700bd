// Session cookies: who signed in, signed with HMAC-SHA256, with an expiry inside the signed value.
import * as v from "valibot";
import { AUTH_MODES, type Identity, ROLES } from "../../contracts/auth.ts";

/** The session cookie's name. */
export const SESSION_COOKIE = "session";

const sessionSchema = v.object({
  sub: v.string(),
  name: v.string(),
  role: v.picklist(ROLES),
  method: v.picklist(AUTH_MODES),
  /** For a session opened with an API token: the token's name, checked on every request. */
  token: v.optional(v.string()),
  exp: v.number(),
});
export type Session = v.InferOutput<typeof sessionSchema>;

const b64url = (bytes: Uint8Array) =>
  btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");

function fromB64url(text: string): Uint8Array | undefined {
  if (!/^[\w-]*$/.test(text)) return undefined;
  try {
    const bin = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
    return Uint8Array.from(bin, (ch) => ch.charCodeAt(0));
  } catch {
    return undefined;
  }
}

/**
 * Seals and opens session values: `base64url(JSON).base64url(HMAC)`. A value whose signature,
 * shape or expiry is wrong opens to `undefined`. Without a secret a random key is made: sessions
 * then end when the process does.
 *
 * @example const codec = createSessionCodec({ secret }); const value = await codec.seal(identity, 3_600_000);
 */
export function createSessionCodec(options: { secret?: string; now?: () => number }) {
  const now = options.now ?? Date.now;
  const raw = options.secret
    ? new TextEncoder().encode(options.secret)
    : crypto.getRandomValues(new Uint8Array(32));
  const keyPromise = crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
    "verify",
  ]);

  return {
    /** A signed value for `identity`, valid for `maxAgeMs`. */
    async seal(identity: Identity, maxAgeMs: number, token?: string): Promise<string> {
      const session: Session = {
        sub: identity.subject,
        name: identity.name,
        role: identity.role,
        method: identity.method,
        ...(token ? { token } : {}),
        exp: now() + maxAgeMs,
      };
      const body = b64url(new TextEncoder().encode(JSON.stringify(session)));
      const mac = new Uint8Array(
        await crypto.subtle.sign("HMAC", await keyPromise, new TextEncoder().encode(body)),
      );
      return `${body}.${b64url(mac)}`;
    },
    /** The session in `value`, or `undefined` when it is forged, malformed or expired. */
    async open(value: string | undefined): Promise<Session | undefined> {
      if (!value || value.length > 4096) return undefined;
      const [body, mac, extra] = value.split(".");
      if (extra !== undefined || !body || !mac) return undefined;
      const sig = fromB64url(mac);
      if (!sig) return undefined;
      const ok = await crypto.subtle.verify(
        "HMAC",
        await keyPromise,
        sig as Uint8Array<ArrayBuffer>,
        new TextEncoder().encode(body),
      );
      if (!ok) return undefined;
      const bytes = fromB64url(body);
      if (!bytes) return undefined;
      let json: unknown;
      try {
        json = JSON.parse(new TextDecoder().decode(bytes));
      } catch {
        return undefined;
      }
      const parsed = v.safeParse(sessionSchema, json);
      if (!parsed.success || parsed.output.exp <= now()) return undefined;
      return parsed.output;
    },
  };
}

export type SessionCodec = ReturnType<typeof createSessionCodec>;
