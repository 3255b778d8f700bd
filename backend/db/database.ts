// Opens the backend's database: PostgreSQL at DATABASE_URL, or embedded PGlite, always via postgres.js.
import postgres, { type PendingQuery, type Sql } from "postgres";
import { redactUrl } from "../../telemetry/redact.ts";
import { startPgliteServer } from "./_pglite_server.ts";
import { isUnavailable } from "./db_errors.ts";

export type DatabaseKind = "postgres" | "pglite";

export interface Database {
  /** The current postgres.js client; read it per use, since `recover` may replace it. */
  readonly sql: Sql;
  kind: DatabaseKind;
  /** Where postgres.js connects (for logs; no password is ever in it for PGlite). */
  url: string;
  /**
   * Resolves when the database answers `SELECT 1` before the signal aborts; rejects otherwise.
   * On PostgreSQL the ping has a connection of its own, so a pool busy with long queries does not
   * make it time out. A connection failure calls `recover`; a timeout never does (it would end the
   * queries still running); it only replaces the ping's own connection.
   */
  ping(signal?: AbortSignal): Promise<void>;
  /**
   * Replaces the postgres.js clients after a connection failure (at most once a second). Works
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
  /** PGlite persisted: how often its write-ahead log is checked for a checkpoint ({@link checkpointIfDue}). */
  checkpointCheckMs?: number;
  /** ... and past how many bytes of it one is made ({@link CHECKPOINT_WAL_BYTES}). */
  checkpointWalBytes?: number;
}

/**
 * PGlite persisted: write-ahead log since the last checkpoint past which one is made. PostgreSQL's
 * checkpointer does this by itself; PGlite, one process with no checkpointer, checkpointed only
 * at a clean stop: its log grew for as long as the backend ran (past 1 GB in minutes of a busy
 * plant), and a restart after a crash replayed all of it (24 s after 1 GB, against 1.5 s).
 */
export const CHECKPOINT_WAL_BYTES = 64 * 2 ** 20;
/** How often PGlite's log is checked against {@link CHECKPOINT_WAL_BYTES}. */
export const CHECKPOINT_CHECK_MS = 60_000;

/**
 * Makes a checkpoint when more than `walBytes` of write-ahead log were written since the last one;
 * resolves with that amount and whether it did. On the caller's connection, so with PGlite's one
 * connection it runs between other statements, never inside another's transaction.
 */
export async function checkpointIfDue(
  sql: Sql,
  walBytes = CHECKPOINT_WAL_BYTES,
): Promise<{ behind: number; checkpointed: boolean }> {
  const [{ behind }] = await sql<{ behind: number }[]>`
    SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), redo_lsn)::float8 AS behind
    FROM pg_control_checkpoint()`;
  if (!(behind > walBytes)) return { behind, checkpointed: false };
  await sql`CHECKPOINT`;
  return { behind, checkpointed: true };
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
  const connect = (max = options.max ?? 10) =>
    postgres(url, {
      // PGlite runs one statement at a time: more connections would only queue on its side.
      max: pglite ? 1 : max,
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
  // PGlite answers one statement at a time whichever connection asks: the ping shares its one.
  const connectPing = () => (pglite ? undefined : connect(1));
  let pingSql = connectPing();
  let recoveredAt = Number.NEGATIVE_INFINITY;
  let pingRenewedAt = Number.NEGATIVE_INFINITY;
  let closed = false;
  // Only pings run on the ping client, so ending it at once loses no one's query.
  const renewPing = () => {
    const now = performance.now();
    if (closed || !pingSql || now - pingRenewedAt < 1000) return;
    pingRenewedAt = now;
    const old = pingSql;
    pingSql = connectPing();
    old.end({ timeout: 0 }).catch(() => {});
  };
  // A persisted PGlite has no checkpointer: the log is checked now and then (one short query).
  const checkpoints =
    pglite && options.pgliteDataDir !== undefined
      ? setInterval(function checkpointPglite() {
          checkpointIfDue(sql, options.checkpointWalBytes).catch(() => {
            // Tried again at the next check; a failing database shows in the readiness check.
          });
        }, options.checkpointCheckMs ?? CHECKPOINT_CHECK_MS)
      : undefined;
  checkpoints?.unref();
  const database: Database = {
    get sql() {
      return sql;
    },
    kind: pglite ? "pglite" : "postgres",
    url: redactUrl(url),
    ping: async function ping(signal?: AbortSignal) {
      if (signal?.aborted) throw signal.reason;
      const query = (pingSql ?? sql)`SELECT 1`.execute();
      query.catch(() => {});
      const aborted = new Promise<never>((_, reject) => {
        signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
      });
      try {
        await Promise.race([query, aborted]);
      } catch (error) {
        // A slow answer is no broken connection: recovering would end the pool's queries. A
        // ping connection stuck for good (postgres.js#1154) is replaced, which costs nobody.
        if (isUnavailable(error)) database.recover();
        else if (signal?.aborted) renewPing();
        throw error;
      } finally {
        if (signal?.aborted) cancelQuietly(query);
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
      renewPing();
    },
    close: async function closeDatabase(timeoutSeconds = 5) {
      closed = true;
      clearInterval(checkpoints);
      await Promise.all([sql.end({ timeout: timeoutSeconds }), pingSql?.end({ timeout: 0 })]);
      await pglite?.close();
    },
  };
  return database;
}

/**
 * Whether `error` is postgres.js writing onto a connection PostgreSQL has just closed: 3.4 (3.4.10
 * too) sends a transaction's own ROLLBACK after a restart, a failover or `pg_terminate_backend`
 * closed its connection mid-transaction, from a `setImmediate` callback that no caller can catch
 * (porsager/postgres#1208; the fixes #1209 and #1215 are not released). The transaction's caller
 * has its CONNECTION_CLOSED error already: nothing else is left undone.
 */
export function isClosedConnectionWrite(error: unknown): boolean {
  const stack = error instanceof TypeError ? (error.stack ?? "") : "";
  return (
    /reading 'write'/.test(stack) &&
    /\bnextWrite\b/.test(stack) &&
    /postgres[\\/]src[\\/]connection\.js/.test(stack)
  );
}

/**
 * Asks PostgreSQL to cancel `query`, ignoring whether it could. The request goes over a connection
 * of its own, which fails when the server is gone by then; postgres.js 3.4's `query.cancel()`
 * drops that request's promise (`canceller(this), canceller = null` returns null), so its
 * rejection went unheard and ended the process. Its canceller is called here instead, the
 * promise caught; a release without one falls back to `cancel()`.
 */
export function cancelQuietly(query: Pick<PendingQuery<never>, "cancel">): void {
  const q = query as unknown as { canceller?: ((q: unknown) => unknown) | null };
  if (!("canceller" in q)) {
    Promise.resolve(query.cancel() as unknown).catch(() => {});
    return;
  }
  const canceller = q.canceller;
  if (typeof canceller !== "function") return;
  q.canceller = null;
  Promise.resolve(canceller(query)).catch(() => {});
}
