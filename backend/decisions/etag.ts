// Conditional JSON answers for the engine's pulls: an ETag over what changes, 304 when the reader has it.
import type { Context } from "hono";

/** A strong ETag: the SHA-256 of `text`, base64url. */
export async function etagOf(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  const b64 = btoa(String.fromCharCode(...new Uint8Array(digest)));
  return `"${b64.replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "")}"`;
}

/** Whether an `If-None-Match` header names `etag` (or is `*`); weak forms compare equal. */
export function matchesIfNoneMatch(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return header
    .split(",")
    .map((t) => t.trim().replace(/^W\//, ""))
    .some((t) => t === "*" || t === etag);
}

/**
 * Sets `etag` and `Cache-Control: no-cache` on the answer; true when the request already holds
 * that version (answer `304`).
 */
export function notModified(c: Context, etag: string): boolean {
  c.header("ETag", etag);
  c.header("Cache-Control", "no-cache");
  return matchesIfNoneMatch(c.req.header("if-none-match"), etag);
}

/**
 * Answers `{as_of, [key]: items}` with an ETag computed over `items` only, so the time of the
 * answer does not change it (or `knownEtag`, one worked out from what the items depend on), or
 * `304` with no body when the request already holds that version.
 */
export async function etaggedJson(
  c: Context,
  key: string,
  items: unknown[],
  asOf: Date,
  knownEtag?: string,
): Promise<Response> {
  const listed = JSON.stringify(items);
  const etag = knownEtag ?? (await etagOf(listed));
  if (notModified(c, etag)) return c.body(null, 304);
  c.header("Content-Type", "application/json");
  return c.body(`{"as_of":${JSON.stringify(asOf.toISOString())},${JSON.stringify(key)}:${listed}}`);
}
