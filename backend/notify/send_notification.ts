// One delivery attempt of a notification: POST with Standard Webhooks headers, classified by the retry policy.
import { deadlineSignal } from "../../contracts/deadline.ts";
import { signWebhook } from "../../contracts/webhook_signature.ts";
import { RETRYABLE_STATUSES } from "./retry_policy.ts";

export interface SendNotificationOptions {
  fetch: typeof fetch;
  url: string;
  body: string;
  /** The `webhook-id`, the same on every attempt. */
  messageId: string;
  /** Signs the delivery when set. */
  secret?: string;
  timeoutMs: number;
  /** Milliseconds since the epoch, for `webhook-timestamp`. */
  now: number;
  /** Aborted at shutdown: the attempt is abandoned, its outcome unknown. */
  signal?: AbortSignal;
}

export type SendResult =
  | { outcome: "delivered"; status: number }
  | { outcome: "retry"; status: number | null; error: string; retryAfterMs?: number }
  | { outcome: "dead"; status: number | null; error: string }
  | { outcome: "abandoned" };

/** Characters of a refusing receiver's answer kept in the error. */
const ANSWER_CHARS = 200;
/**
 * Bytes of a refusing receiver's answer read at most; the rest is cancelled unread, so a huge
 * error page costs no memory (4 KiB still holds the 200 characters kept, whatever their encoding).
 */
const ANSWER_BYTES = 4096;

function retryAfterMs(header: string | null, now: number): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * Sends one notification. Every attempt carries `webhook-id` (stable, so a receiver can drop a
 * repeat) and `webhook-timestamp`; `webhook-signature` too when the route has a secret. A 2xx is
 * delivered; network errors, timeouts and `RETRYABLE_STATUSES` are retried; any other answer
 * (redirects included: a POST is not replayed elsewhere) makes the message a dead letter.
 *
 * @example await sendNotification({ fetch, url, body, messageId, timeoutMs: 10_000, now: Date.now() });
 */
export async function sendNotification(o: SendNotificationOptions): Promise<SendResult> {
  const timestamp = Math.floor(o.now / 1000);
  const headers: Record<string, string> = o.secret
    ? await signWebhook({ secret: o.secret, id: o.messageId, timestamp, body: o.body })
    : { "webhook-id": o.messageId, "webhook-timestamp": String(timestamp) };
  const deadline = deadlineSignal(o.timeoutMs, o.signal);
  try {
    return await attempt(o, headers, deadline.signal);
  } finally {
    deadline.clear();
  }
}

/** One POST under `signal` (the time limit, or the caller's abort) and what its answer means. */
async function attempt(
  o: SendNotificationOptions,
  headers: Record<string, string>,
  signal: AbortSignal,
): Promise<SendResult> {
  let res: Response;
  try {
    res = await o.fetch(o.url, {
      method: "POST",
      headers: {
        ...headers,
        "content-type": "application/json",
        "user-agent": "anomaly-backend-notify",
      },
      body: o.body,
      redirect: "manual",
      signal,
    });
  } catch (error) {
    if (o.signal?.aborted) return { outcome: "abandoned" };
    // Without any URL: the error is stored and shown on the Health page, and a webhook's path
    // (a Slack webhook's is its secret) must not be.
    const reason = signal.aborted
      ? `no answer within ${o.timeoutMs} ms`
      : String((error as Error).cause ?? (error as Error).message).replace(
          /\b[a-z][a-z\d+.-]*:\/\/\S+/gi,
          "<webhook url>",
        );
    return { outcome: "retry", status: null, error: reason };
  }
  if (res.status >= 200 && res.status < 300) {
    await res.body?.cancel().catch(() => {});
    return { outcome: "delivered", status: res.status };
  }
  // Redacted before it is cut short, so no piece of the URL is left at the cut.
  const answer = withoutUrl(await readAnswer(res), o.url).slice(0, ANSWER_CHARS);
  const error = `HTTP ${res.status}${answer ? `: ${answer}` : ""}`;
  if (RETRYABLE_STATUSES.has(res.status)) {
    const wait = retryAfterMs(res.headers.get("retry-after"), o.now);
    return {
      outcome: "retry",
      status: res.status,
      error,
      ...(wait === undefined ? {} : { retryAfterMs: wait }),
    };
  }
  return { outcome: "dead", status: res.status, error };
}

/** The start of an answer's body, at most ANSWER_BYTES; what is left is cancelled unread. */
async function readAnswer(res: Response): Promise<string> {
  if (!res.body) return "";
  const reader = res.body.getReader();
  const bytes = new Uint8Array(ANSWER_BYTES);
  let size = 0;
  try {
    while (size < ANSWER_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      const take = Math.min(value.byteLength, ANSWER_BYTES - size);
      bytes.set(value.subarray(0, take), size);
      size += take;
    }
  } catch {
    // An answer cut off (or the time limit reached) while reading: its start still says why.
  } finally {
    reader.cancel().catch(() => {});
  }
  // Not fatal: a character cut at the limit becomes U+FFFD.
  return new TextDecoder().decode(bytes.subarray(0, size));
}

/** Query values shorter than this are not redacted on their own (`1`, `json`, `plant` are no secret). */
const SECRET_VALUE_CHARS = 6;
/**
 * Path segments shorter than this are not redacted on their own (`hooks`, `v1`, a Slack team id
 * `T0001`): a receiver's answer naming them says where it failed and gives nothing away.
 */
const SECRET_SEGMENT_CHARS = 8;

/** `s` percent-decoded (`+` as a space too, as a query reads it), or as it is when it does not decode. */
function decoded(s: string, plusIsSpace: boolean): string {
  try {
    return decodeURIComponent(plusIsSpace ? s.replaceAll("+", " ") : s);
  } catch {
    return s;
  }
}

/** The ways an answer may quote `form`: as is, HTML-escaped, JSON-escaped, percent-decoded or encoded. */
function spellings(form: string): string[] {
  const out = new Set<string>();
  for (const f of [form, decoded(form, false), decoded(form, true), encodeURIComponent(form)]) {
    out.add(f);
    out.add(encodeURI(f));
    out.add(f.replaceAll("/", "\\/"));
    for (const amp of ["&amp;", "&#38;", "&#x26;"]) {
      out.add(
        f
          .replaceAll("&", amp)
          .replaceAll("<", "&lt;")
          .replaceAll(">", "&gt;")
          .replaceAll('"', "&quot;")
          .replaceAll("'", "&#39;"),
      );
    }
  }
  return [...out];
}

/**
 * `text` with the webhook's URL replaced by `<webhook url>`: the whole of it, its path and query,
 * its path, its query, each path segment of SECRET_SEGMENT_CHARS or more and each query value of
 * SECRET_VALUE_CHARS or more on its own, each as written, HTML-escaped (`&amp;`), JSON-escaped,
 * percent-decoded or percent-encoded, in any case. The error is stored, logged and shown on the
 * Health page, and a receiver's error page may quote what it was asked for, or only the token it
 * did not know (a Slack webhook's last path segments are its secret; a token may be in the query).
 */
function withoutUrl(text: string, url: string): string {
  const parsed = new URL(url);
  const forms = [url, parsed.href, parsed.pathname + parsed.search, parsed.pathname, parsed.search];
  for (const segment of parsed.pathname.split("/")) {
    if (decoded(segment, false).length >= SECRET_SEGMENT_CHARS) forms.push(segment);
  }
  for (const pair of parsed.search.slice(1).split("&")) {
    const raw = pair.slice(pair.indexOf("=") + 1);
    if (pair.includes("=") && decoded(raw, true).length >= SECRET_VALUE_CHARS) forms.push(raw);
  }
  for (const value of parsed.searchParams.values()) {
    if (value.length >= SECRET_VALUE_CHARS) forms.push(value);
  }
  const all = new Set<string>();
  for (const form of forms) for (const spelling of spellings(form)) all.add(spelling);
  // Longest first, so a whole URL is replaced before its parts; a bare "/" is no secret, and
  // replacing it would garble every answer.
  const sorted = [...all].filter((f) => f.length > 1).sort((a, b) => b.length - a.length);
  for (const form of sorted) {
    text = text.replace(
      new RegExp(form.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), "gi"),
      "<webhook url>",
    );
  }
  return text;
}
