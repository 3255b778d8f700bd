// Opaque keyset cursor for alert lists: the (timestamp, alert_id) of the last row of a page.
import { HttpError } from "../../contracts/error.ts";
import { isStorableInstant } from "../../contracts/storable.ts";

export interface CursorKey {
  ts: Date;
  alertId: string;
}

const UUID = /^[\da-f]{8}(?:-[\da-f]{4}){3}-[\da-f]{12}$/i;

/** Encodes the last row of a page as base64url JSON (opaque to clients, readable when debugging). */
export function encodeCursor(key: CursorKey): string {
  const json = JSON.stringify([key.ts.toISOString(), key.alertId]);
  return btoa(json).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** Decodes a cursor from a query string; anything malformed is a 400 `invalid_request`. */
export function decodeCursor(text: string): CursorKey {
  const bad = () =>
    new HttpError(400, "invalid_request", "'cursor' is not a cursor this API issued");
  let parsed: unknown;
  try {
    parsed = JSON.parse(atob(text.replaceAll("-", "+").replaceAll("_", "/")));
  } catch {
    throw bad();
  }
  if (!Array.isArray(parsed) || parsed.length !== 2) throw bad();
  const [iso, alertId] = parsed;
  if (typeof iso !== "string" || typeof alertId !== "string" || !UUID.test(alertId)) throw bad();
  const ts = new Date(iso);
  if (!isStorableInstant(ts)) throw bad();
  return { ts, alertId };
}
