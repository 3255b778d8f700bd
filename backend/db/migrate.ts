// Versioned SQL migrations: applies `NNNN_name.sql` files in order, once each, recorded in a table.
import { readdir, readFile } from "node:fs/promises";
import type { Sql } from "postgres";

/** One migration: its version (the file's number), name and SQL text. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export interface MigrateResult {
  /** Versions applied by this call, in order (empty when the schema was already current). */
  applied: number[];
  /** The schema version after the call. */
  version: number;
}

/** Folder of the backend's own migrations. */
export const MIGRATIONS_DIR = new URL("./migrations/", import.meta.url);

// Any constant shared by every backend instance: concurrent start-ups migrate one at a time.
const MIGRATION_LOCK_KEY = 7_141_993;

/** Reads `NNNN_name.sql` files from a folder, ordered by version. */
export async function loadMigrations(dir: URL = MIGRATIONS_DIR): Promise<Migration[]> {
  const migrations: Migration[] = [];
  for (const file of (await readdir(dir)).sort()) {
    const match = /^(\d+)_([A-Za-z0-9_]+)\.sql$/.exec(file);
    if (!match) continue;
    const text = await readFile(new URL(file, dir), "utf8");
    migrations.push({ version: Number(match[1]), name: match[2], sql: text });
  }
  for (let i = 1; i < migrations.length; i++) {
    if (migrations[i].version === migrations[i - 1].version) {
      throw new RangeError(`two migrations have version ${migrations[i].version}`);
    }
  }
  return migrations;
}

/**
 * Earlier texts of a migration that databases were migrated with before it was edited, by version:
 * those databases start, and a later migration brings them level (0018 for 0006's first text,
 * which had no `expired_reason`, no `silence_created_idx` and no expiry check).
 */
const EARLIER_CHECKSUMS: ReadonlyMap<number, readonly string[]> = new Map([
  [6, ["5a9aecc808fc666b405acea6e7e5dd05ffc07a756f9b77be049ebf776198664b"]],
]);

/** SHA-256 of the text with CRLF line ends read as LF: a Windows checkout migrates the same. */
async function checksum(text: string): Promise<string> {
  const lf = text.replaceAll("\r\n", "\n");
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(lf));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Brings the schema (in the connection's `search_path`) up to date in one transaction, under an
 * advisory lock. A migration already applied whose text has since changed is an error: edit
 * history by adding a migration, never by rewriting one.
 *
 * @example await migrate(sql); // at start-up, before serving
 */
export async function migrate(sql: Sql, migrations?: readonly Migration[]): Promise<MigrateResult> {
  const all = migrations ?? (await loadMigrations());
  const sums = await Promise.all(all.map((m) => checksum(m.sql)));
  return await sql.begin(async function applyMigrations(tx) {
    await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`;
    await tx`
      CREATE TABLE IF NOT EXISTS schema_migrations (
        version integer PRIMARY KEY,
        name text NOT NULL,
        checksum text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`;
    const rows = await tx<{ version: number; checksum: string }[]>`
      SELECT version, checksum FROM schema_migrations ORDER BY version`;
    const done = new Map(rows.map((r) => [r.version, r.checksum]));
    // A database a newer release migrated: this one does not know its tables' shapes, and
    // writing through it would store what the newer release misreads (a rollback on live data).
    const known = Math.max(0, ...all.map((m) => m.version));
    const newer = rows.filter((r) => r.version > known).map((r) => r.version);
    if (newer.length > 0) {
      throw new Error(
        `the database was migrated by a newer release (schema version ${Math.max(...newer)}; this release knows up to ${known}): start that release or a later one, or restore a backup taken before the upgrade`,
      );
    }
    const applied: number[] = [];
    for (const [i, migration] of all.entries()) {
      const recorded = done.get(migration.version);
      if (recorded !== undefined) {
        if (recorded !== sums[i] && !EARLIER_CHECKSUMS.get(migration.version)?.includes(recorded)) {
          throw new Error(
            `migration ${migration.version}_${migration.name} was changed after it was applied`,
          );
        }
        continue;
      }
      await tx.unsafe(migration.sql);
      await tx`
        INSERT INTO schema_migrations (version, name, checksum)
        VALUES (${migration.version}, ${migration.name}, ${sums[i]})`;
      applied.push(migration.version);
    }
    const version = Math.max(0, ...done.keys(), ...applied);
    return { applied, version };
  });
}
