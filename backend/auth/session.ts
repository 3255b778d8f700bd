// Session cookies: who signed in, signed with HMAC-SHA256, with an expiry inside the signed value.
import * as v from "valibot";
import { AUTH_MODES, type Identity, ROLES } from "../../contracts/auth.ts";
import { createSealer, hmacKey } from "./sealed_value.ts";

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

/**
 * Seals and opens session values (sealed_value.ts). A value whose signature, shape or expiry is
 * wrong opens to `undefined`. Without a secret a random key is made: sessions then end when the
 * process does.
 *
 * @example const codec = createSessionCodec({ secret }); const value = await codec.seal(identity, 3_600_000);
 */
export function createSessionCodec(options: { secret?: string; now?: () => number }) {
  const now = options.now ?? Date.now;
  const sealer = createSealer(hmacKey(options.secret), sessionSchema, now, 4096);
  return {
    /** A signed value for `identity`, valid for `maxAgeMs`. */
    seal(identity: Identity, maxAgeMs: number, token?: string): Promise<string> {
      return sealer.seal({
        sub: identity.subject,
        name: identity.name,
        role: identity.role,
        method: identity.method,
        ...(token ? { token } : {}),
        exp: now() + maxAgeMs,
      });
    },
    /** The session in `value`, or `undefined` when it is forged, malformed or expired. */
    open: (value: string | undefined): Promise<Session | undefined> => sealer.open(value),
  };
}

export type SessionCodec = ReturnType<typeof createSessionCodec>;
