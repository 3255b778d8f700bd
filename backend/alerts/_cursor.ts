// Opaque keyset cursor for alert lists: the (timestamp, alert_id) of the last row of a page.
import { decodeKeyset, encodeKeyset } from "../_keyset_cursor.ts";

export interface CursorKey {
  ts: Date;
  alertId: string;
}

const UUID = /^[\da-f]{8}(?:-[\da-f]{4}){3}-[\da-f]{12}$/i;

/** Encodes the last row of a page as base64url JSON (opaque to clients, readable when debugging). */
export function encodeCursor(key: CursorKey): string {
  return encodeKeyset(key.ts, key.alertId);
}

/** Decodes a cursor from a query string; anything malformed is a 400 `invalid_request`. */
export function decodeCursor(text: string): CursorKey {
  const { at, id } = decodeKeyset(text, (id) => UUID.test(id));
  return { ts: at, alertId: id };
}
