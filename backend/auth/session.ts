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
  /**
   * With `token`: {@link tokenFingerprint} of the token it was opened with, so a new token added
   * under the same name does not bring the old token's sessions back. A token session sealed
   * before this field existed lacks it, and is refused.
   */
  fingerprint: v.optional(v.string()),
  /**
   * The session's own id (128 random bits), by which signing out ends it everywhere
   * (ended_sessions.ts). A session sealed before sessions had one cannot be ended so, and is
   * refused: its holder signs in once more.
   */
  sid: v.pipe(v.string(), v.minLength(16), v.maxLength(64)),
  exp: v.number(),
});
export type Session = v.InferOutput<typeof sessionSchema>;

/**
 * A token's fingerprint for its sessions: the first 16 hex digits (64 bits) of its SHA-256 as
 * the tokens file stores it. Two tokens under one name differ in it but by chance.
 *
 * @example tokenFingerprint(entry.sha256) === session.fingerprint
 */
export function tokenFingerprint(sha256: string): string {
  return sha256.slice(0, 16);
}

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
    /**
     * A signed value for `identity`, valid for `maxAgeMs`; with `token` (the tokens file's entry
     * it signed in with), tied to that token: its name and fingerprint.
     */
    seal(
      identity: Identity,
      maxAgeMs: number,
      token?: { name: string; sha256: string },
    ): Promise<string> {
      return sealer.seal({
        sub: identity.subject,
        name: identity.name,
        role: identity.role,
        method: identity.method,
        ...(token ? { token: token.name, fingerprint: tokenFingerprint(token.sha256) } : {}),
        sid: Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("base64url"),
        exp: now() + maxAgeMs,
      });
    },
    /** The session in `value`, or `undefined` when it is forged, malformed or expired. */
    open: (value: string | undefined): Promise<Session | undefined> => sealer.open(value),
  };
}

export type SessionCodec = ReturnType<typeof createSessionCodec>;
