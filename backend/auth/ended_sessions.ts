// Sessions ended by signing out, kept in the database until they would have expired.
import type { Database } from "../db/database.ts";
import { dbErrorTranslator } from "../db/db_errors.ts";

/** Where signing out is recorded, so that a copy of the session's cookie ends with it. */
export interface EndedSessions {
  /** Records session `id` as ended; it would have expired at `expiresAt` anyway. */
  end(id: string, expiresAt: Date): Promise<void>;
  /** Whether session `id` was ended. */
  isEnded(id: string): Promise<boolean>;
}

/**
 * Ended sessions in table `session_ended` (migration 0017). `db` is read per use: the backend
 * replaces its client after a connection failure. Rows past their session's expiry are deleted
 * at the next sign-out: nothing accepts those sessions any more.
 *
 * @example createAuth({ mode: "token", tokens, endedSessions: createEndedSessions(() => db) });
 */
export function createEndedSessions(db: () => Pick<Database, "sql" | "recover">): EndedSessions {
  const failed = (error: unknown) => dbErrorTranslator(db())(error);
  return {
    async end(id, expiresAt) {
      const sql = db().sql;
      await sql`
        WITH gone AS (DELETE FROM session_ended WHERE expires_at < now())
        INSERT INTO session_ended (session_id, expires_at) VALUES (${id}, ${expiresAt})
        ON CONFLICT (session_id) DO NOTHING`.catch(failed);
    },
    async isEnded(id) {
      const sql = db().sql;
      const rows = await sql`SELECT 1 FROM session_ended WHERE session_id = ${id}`.catch(failed);
      return rows.length > 0;
    },
  };
}
