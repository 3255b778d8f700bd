// Values sealed for cookies: `base64url(JSON).base64url(HMAC-SHA256)` with an expiry inside, checked against a schema when opened.
import * as v from "valibot";

const enc = new TextEncoder();

const b64url = (bytes: Uint8Array) =>
  btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");

function fromB64url(text: string): Uint8Array<ArrayBuffer> | undefined {
  if (!/^[\w-]*$/.test(text)) return undefined;
  try {
    return Uint8Array.from(atob(text.replace(/-/g, "+").replace(/_/g, "/")), (ch) =>
      ch.charCodeAt(0),
    );
  } catch {
    return undefined;
  }
}

/**
 * An HMAC-SHA256 key from `secret` (random when unset: values then die with the process). With
 * `purpose`, a key of its own derived by HKDF, so a value sealed for one cookie cannot pass for
 * another's.
 */
export async function hmacKey(secret: string | undefined, purpose?: string): Promise<CryptoKey> {
  const raw = secret ? enc.encode(secret) : crypto.getRandomValues(new Uint8Array(32));
  const hmac = { name: "HMAC", hash: "SHA-256" };
  if (purpose === undefined) {
    return crypto.subtle.importKey("raw", raw, hmac, false, ["sign", "verify"]);
  }
  const base = await crypto.subtle.importKey("raw", raw, "HKDF", false, ["deriveKey"]);
  return crypto.subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: enc.encode(purpose) },
    base,
    { ...hmac, length: 256 },
    false,
    ["sign", "verify"],
  );
}

/**
 * Seals values of `schema` (which carries `exp`, milliseconds since the epoch) and opens them: a
 * value whose signature, shape or expiry is wrong, or longer than `maxLength`, opens to
 * `undefined`.
 *
 * @example const sealer = createSealer(hmacKey(secret), schema, Date.now, 4096); await sealer.open(await sealer.seal(value));
 */
export function createSealer<S extends v.GenericSchema<unknown, { exp: number }>>(
  key: Promise<CryptoKey>,
  schema: S,
  now: () => number,
  maxLength: number,
) {
  return {
    async seal(value: v.InferOutput<S>): Promise<string> {
      const body = b64url(enc.encode(JSON.stringify(value)));
      const mac = await crypto.subtle.sign("HMAC", await key, enc.encode(body));
      return `${body}.${b64url(new Uint8Array(mac))}`;
    },
    async open(text: string | undefined): Promise<v.InferOutput<S> | undefined> {
      if (!text || text.length > maxLength) return undefined;
      const [body, mac, extra] = text.split(".");
      const sig = mac ? fromB64url(mac) : undefined;
      if (extra !== undefined || !body || !sig) return undefined;
      if (!(await crypto.subtle.verify("HMAC", await key, sig, enc.encode(body)))) return undefined;
      const bytes = fromB64url(body);
      if (!bytes) return undefined;
      let json: unknown;
      try {
        json = JSON.parse(new TextDecoder().decode(bytes));
      } catch {
        return undefined;
      }
      const parsed = v.safeParse(schema, json);
      return parsed.success && parsed.output.exp > now() ? parsed.output : undefined;
    },
  };
}
