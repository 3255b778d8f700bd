// Opens the backend's database: PostgreSQL at DATABASE_URL, or embedded PGlite, always via postgres.js.
import postgres, { type Sql } from "postgres";
import { startPgliteServer } from "./_pglite_server.ts";
import { isUnavailable } from "./db_errors.ts";

export type DatabaseKind = "postgres" | "pglite";

export interface Database {
  /** The current postgres.js client; read it per use, since `recover` may replace it. */
  readonly sql: Sql;
  kind: DatabaseKind;
  /** Where postgres.js connects (for logs; no password is ever in it for PGlite). */
  url: string;
  /** Resolves when the database answers `SELECT 1` before the signal aborts; rejects otherwise. */
  ping(signal?: AbortSignal): Promise<void>;
  /**
   * Replaces the postgres.js client after a connection failure (at most once a second). Works
   * around postgres.js 3.4.9 leaving a connection unable to write again when its socket closed
   * with a write pending (porsager/postgres#1154, #1208): without it, a database restart could
   * leave the pool failing forever.
   */
  recover(): void;
  /** Ends the connections (waiting up to `timeoutSeconds` for queries) and stops PGlite. */
  close(timeoutSeconds?: number): Promise<void>;
}

export interface OpenDatabaseOptions {
  /** PostgreSQL URL; absent means embedded PGlite. */
  url?: string;
  /** PGlite data folder; absent means in memory. Ignored with `url`. */
  pgliteDataDir?: string;
  /** Schema to work in (tests use one per run); it must exist. */
  searchPath?: string;
  /** Pool size for PostgreSQL (PGlite always uses one connection). */
  max?: number;
}

/**
 * PostgreSQL's text form of a `timestamptz` ("2026-11-24 09:00:00.123+00") as a Date, read in
 * ISO 8601 form: the runtime's lenient parser, which postgres.js uses, reads year 0050 as 1950.
 * Anything else (infinity, BC) is left to that parser, as before.
 */
export function parseTimestamptz(text: string): Date {
  const m = /^(\d{4})-(\d\d)-(\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)([+-]\d\d)(?::(\d\d))?$/.exec(text);
  return m ? new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}${m[5]}:${m[6] ?? "00"}`) : new Date(text);
}

/**
 * A Date as a `timestamptz` parameter. An invalid one is sent as text the server refuses with a
 * clear error: a throw here, inside postgres.js's writing of the query, could leave its
 * connection stuck (with PGlite's one connection, every later query waited for ever).
 */
export function serializeTimestamptz(x: Date | string): string {
  const d = x instanceof Date ? x : new Date(x);
  return Number.isNaN(d.getTime()) ? "invalid date" : d.toISOString();
}

/**
 * Connects postgres.js to PostgreSQL, or starts PGlite and connects to it over its socket.
 *
 * @example const db = await openDatabase({ url: config.DATABASE_URL }); await migrate(db.sql);
 */
export async function openDatabase(options: OpenDatabaseOptions = {}): Promise<Database> {
  const pglite = options.url
    ? undefined
    : await startPgliteServer({ dataDir: options.pgliteDataDir });
  const url = options.url ?? pglite!.url;
  const connect = () =>
    postgres(url, {
      // PGlite runs one statement at a time: more connections would only queue on its side.
      max: pglite ? 1 : (options.max ?? 10),
      connect_timeout: 5,
      idle_timeout: pglite ? undefined : 60,
      onnotice: () => {},
      connection: {
        application_name: "anomaly-backend",
        // Times come back as UTC whatever the server's zone: a zone's historical offsets (a
        // date before 1900 in Europe/Berlin reads "+00:53:28") are no JavaScript Date.
        TimeZone: "UTC",
        ...(options.searchPath ? { search_path: options.searchPath } : {}),
      },
      types: {
        timestamptz: {
          to: 1184,
          from: [1184],
          serialize: serializeTimestamptz,
          parse: parseTimestamptz,
        },
      },
    });
  let sql = connect();
  let recoveredAt = 0;
  let closed = false;
  const database: Database = {
    get sql() {
      return sql;
    },
    kind: pglite ? "pglite" : "postgres",
    url: url.replace(/\/\/([^:@/]+):[^@/]*@/, "//$1:***@"),
    ping: async function ping(signal?: AbortSignal) {
      const query = sql`SELECT 1`.execute();
      query.catch(() => {});
      const aborted = new Promise<never>((_, reject) => {
        signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
      });
      if (signal?.aborted) throw signal.reason;
      try {
        await Promise.race([query, aborted]);
      } catch (error) {
        if (signal?.aborted || isUnavailable(error)) database.recover();
        throw error;
      } finally {
        if (signal?.aborted) query.cancel();
      }
    },
    recover: function recover() {
      const now = performance.now();
      if (closed || now - recoveredAt < 1000) return;
      recoveredAt = now;
      const old = sql;
      sql = connect();
      // Queries still running on the old client may finish; it is ended in the background.
      old.end({ timeout: 5 }).catch(() => {});
    },
    close: async function closeDatabase(timeoutSeconds = 5) {
      closed = true;
      await sql.end({ timeout: timeoutSeconds });
      await pglite?.close();
    },
  };
  return database;
}
