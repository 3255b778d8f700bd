// Opaque keyset cursors for the API's lists: the (instant, id) of a page's last row, base64url JSON.
import { HttpError } from "../contracts/error.ts";
import { isStorableInstant } from "../contracts/storable.ts";

/** Encodes a page's last row as base64url JSON (opaque to clients, readable when debugging). */
export function encodeKeyset(at: Date, id: string): string {
  const json = JSON.stringify([at.toISOString(), id]);
  return btoa(json).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/**
 * Decodes a cursor from a query string; anything malformed, an instant PostgreSQL cannot store or
 * an id `idOk` refuses is a 400 `invalid_request`.
 *
 * @example decodeKeyset(next_cursor, (id) => UUID.test(id)) // { at, id }
 */
export function decodeKeyset(
  text: string,
  idOk: (id: string) => boolean,
): { at: Date; id: string } {
  const bad = () =>
    new HttpError(400, "invalid_request", "'cursor' is not a cursor this API issued");
  let parsed: unknown;
  try {
    parsed = JSON.parse(atob(text.replaceAll("-", "+").replaceAll("_", "/")));
  } catch {
    throw bad();
  }
  if (!Array.isArray(parsed) || parsed.length !== 2) throw bad();
  const [iso, id] = parsed;
  if (typeof iso !== "string" || typeof id !== "string" || !idOk(id)) throw bad();
  const at = new Date(iso);
  if (!isStorableInstant(at)) throw bad();
  return { at, id };
}
