// Standard Webhooks signatures for alerts: the engine signs, the backend verifies (web crypto only).
import { HttpError } from "./error.ts";

/** The three headers a signed delivery carries. */
export type WebhookHeaders = {
  "webhook-id": string;
  "webhook-timestamp": string;
  "webhook-signature": string;
};

export interface SignWebhookOptions {
  /** `whsec_<base64>` (the base64-decoded bytes are the key) or any other string (its UTF-8 bytes). */
  secret: string;
  /** The message id; for alerts the `alert_id`. */
  id: string;
  /** Unix time in seconds. */
  timestamp: number;
  /** The exact body text that is sent. */
  body: string;
}

export interface VerifyWebhookOptions {
  secret: string;
  headers: { get(name: string): string | null };
  /** The raw body text as received, before any parsing. */
  body: string;
  /** Unix time in seconds; defaults to the current time. */
  now?: number;
  /** Largest accepted distance between `webhook-timestamp` and `now`, either way (300 s). */
  toleranceSeconds?: number;
}

const SECRET_PREFIX = "whsec_";
const encoder = new TextEncoder();

// Importing a key costs far more than the HMAC of a small body; one key per secret is reused.
const keyCache = new Map<string, Promise<CryptoKey>>();

function secretBytes(secret: string): Uint8Array<ArrayBuffer> {
  if (secret.startsWith(SECRET_PREFIX)) {
    try {
      return base64Decode(secret.slice(SECRET_PREFIX.length));
    } catch {
      throw new RangeError("'secret' starts with whsec_ but the rest is not base64");
    }
  }
  return encoder.encode(secret);
}

/**
 * Why `secret` cannot sign (a `whsec_` secret whose rest is not base64, or none of it; any other
 * shorter than 16 characters); `undefined` when it can. Checked when routes are read, so a bad
 * secret stops the start instead of every delivery.
 */
export function webhookSecretProblem(secret: string): string | undefined {
  if (secret.startsWith(SECRET_PREFIX)) {
    try {
      if (secretBytes(secret).length > 0) return undefined;
    } catch {
      // Said below.
    }
    return "must be whsec_ followed by base64 (the key's bytes)";
  }
  return secret.length >= 16 ? undefined : "must be whsec_<base64> or at least 16 characters";
}

function hmacKey(secret: string): Promise<CryptoKey> {
  let key = keyCache.get(secret);
  if (!key) {
    if (secret.length === 0) throw new RangeError("'secret' must not be empty");
    key = crypto.subtle.importKey(
      "raw",
      secretBytes(secret),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign", "verify"],
    );
    if (keyCache.size > 16) keyCache.clear();
    keyCache.set(secret, key);
  }
  return key;
}

function base64Encode(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

function base64Decode(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

const signedContent = (id: string, timestamp: string, body: string) =>
  encoder.encode(`${id}.${timestamp}.${body}`);

/**
 * Signs a delivery per Standard Webhooks: `v1,` + base64 HMAC-SHA256 over `id.timestamp.body`.
 *
 * @example
 * const headers = await signWebhook({ secret, id: alert.alert_id, timestamp: Math.floor(Date.now() / 1000), body });
 * await fetch(url, { method: "POST", headers: { ...headers, "content-type": "application/json" }, body });
 */
export async function signWebhook(options: SignWebhookOptions): Promise<WebhookHeaders> {
  const { secret, id, timestamp, body } = options;
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) {
    throw new RangeError(`'timestamp' must be whole seconds since the epoch, got ${timestamp}`);
  }
  const ts = String(timestamp);
  const mac = await crypto.subtle.sign("HMAC", await hmacKey(secret), signedContent(id, ts, body));
  return {
    "webhook-id": id,
    "webhook-timestamp": ts,
    "webhook-signature": `v1,${base64Encode(new Uint8Array(mac))}`,
  };
}

const reject = (message: string) => new HttpError(401, "invalid_signature", message);

/**
 * Verifies a signed delivery and resolves when one `v1` signature in `webhook-signature` matches.
 * The comparison is `crypto.subtle.verify`, which is constant-time. Throws
 * `HttpError(401, "invalid_signature")` for missing headers, a stale or future timestamp (beyond
 * `toleranceSeconds`) or no matching signature.
 */
export async function verifyWebhook(options: VerifyWebhookOptions): Promise<void> {
  const { secret, headers, body, toleranceSeconds = 300 } = options;
  const now = options.now ?? Math.floor(Date.now() / 1000);
  const id = headers.get("webhook-id");
  const timestamp = headers.get("webhook-timestamp");
  const signatures = headers.get("webhook-signature");
  if (!id || !timestamp || !signatures) {
    throw reject("webhook-id, webhook-timestamp and webhook-signature headers are required");
  }
  if (!/^\d{1,12}$/.test(timestamp)) throw reject("webhook-timestamp must be Unix seconds");
  if (Math.abs(now - Number(timestamp)) > toleranceSeconds) {
    throw reject(`webhook-timestamp is more than ${toleranceSeconds} s from the current time`);
  }
  const key = await hmacKey(secret);
  const content = signedContent(id, timestamp, body);
  // The header may list several signatures (key rotation); any one valid v1 signature suffices.
  for (const entry of signatures.split(" ")) {
    const comma = entry.indexOf(",");
    if (comma < 0 || entry.slice(0, comma) !== "v1") continue;
    let mac: Uint8Array<ArrayBuffer>;
    try {
      mac = base64Decode(entry.slice(comma + 1));
    } catch {
      continue;
    }
    if (await crypto.subtle.verify("HMAC", key, mac, content)) return;
  }
  throw reject("no valid v1 signature in webhook-signature");
}
