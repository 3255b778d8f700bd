// Translates postgres.js errors at the repository boundary into what the HTTP layer understands.
import { HttpError } from "../../contracts/error.ts";

/** A unique constraint was violated (SQLSTATE 23505). */
export class DuplicateError extends Error {
  override name = "DuplicateError";
}

// Client-side codes postgres.js sets when a connection cannot be made or is lost.
const CONNECTION_CODES = new Set([
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

// Server-side SQLSTATEs that mean "not now": the client should retry later.
const UNAVAILABLE_SQLSTATES = new Set([
  "57P01", // admin_shutdown: the server is stopping
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now: the server is starting or recovering
  "53300", // too_many_connections
  "40001", // serialization_failure
  "40P01", // deadlock_detected
]);

/** Whether the error means the database is (for now) unreachable, so the request may be retried. */
export function isUnavailable(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== "string") return false;
  return CONNECTION_CODES.has(code) || UNAVAILABLE_SQLSTATES.has(code) || code.startsWith("08");
}

/**
 * Whether the server refused the connection: the role may not log in or its password is wrong
 * (class 28), or the database does not exist (3D000, renamed or dropped). At start-up this is a
 * wrong setting and fails at once; once serving, a request gets a 503 until it is put right.
 */
export function isRefused(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== "string") return false;
  return code === "3D000" || code.startsWith("28");
}

/**
 * Rethrows `error` as a `DuplicateError`, a 503 `HttpError` (the database unreachable or refusing
 * the connection; `error` is its `cause`), or unchanged.
 */
export function translateDbError(error: unknown): never {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === "23505") throw new DuplicateError((error as Error).message, { cause: error });
  if (isUnavailable(error) || isRefused(error)) {
    const http = new HttpError(
      503,
      "database_unavailable",
      "the database is unavailable; retry later",
      { "Retry-After": "1" },
    );
    // The database's own words ("password authentication failed", "not permitted to log in")
    // for the logs; the answer's body keeps the generic message.
    http.cause = error;
    throw http;
  }
  throw error;
}

/**
 * `translateDbError` for a repository over `db`: an unavailable database also asks it to recover
 * (postgres.js then gets a fresh client on the next call).
 */
export function dbErrorTranslator(db: { recover(): void }): (error: unknown) => never {
  return (error: unknown): never => {
    try {
      return translateDbError(error);
    } catch (translated) {
      if ((translated as { status?: number }).status === 503) db.recover();
      throw translated;
    }
  };
}
