// Test helper: a fresh migrated database per test file, on PGlite always and PostgreSQL when configured.
import postgres, { type Sql, type TransactionSql } from "postgres";
import { type Database, openDatabase } from "./database.ts";
import { migrate } from "./migrate.ts";

export interface TestDatabase extends Database {
  /** Closes the connections and removes everything the test created. */
  dispose(): Promise<void>;
  /** A new connection pool to the same database and schema (a "restarted" backend). */
  reopen(): Promise<Database>;
}

export interface TestTarget {
  kind: "pglite" | "postgres";
  open(options?: { migrate?: boolean }): Promise<TestDatabase>;
}

let counter = 0;

/** PGlite in memory, plus `DATABASE_URL` (a schema of its own per call, dropped on dispose). */
export function testTargets(): TestTarget[] {
  const targets: TestTarget[] = [
    {
      kind: "pglite",
      async open(options = {}) {
        const db = await openDatabase({});
        if (options.migrate !== false) await migrate(db.sql);
        // Object.assign keeps the `sql` getter, which a spread would freeze.
        return Object.assign(db, {
          dispose: () => db.close(),
          reopen: () => Promise.reject(new Error("in-memory PGlite cannot be reopened")),
        });
      },
    },
  ];
  const url = process.env.DATABASE_URL;
  if (url) {
    targets.push({
      kind: "postgres",
      async open(options = {}) {
        const schema = `test_${process.pid}_${Date.now().toString(36)}_${counter++}`;
        const admin = postgres(url, { max: 1, onnotice: () => {} });
        await admin.unsafe(`CREATE SCHEMA ${schema}`);
        const db = await openDatabase({ url, searchPath: schema });
        if (options.migrate !== false) await migrate(db.sql);
        return Object.assign(db, {
          reopen: () => openDatabase({ url, searchPath: schema }),
          async dispose() {
            await db.close();
            await admin.unsafe(`DROP SCHEMA ${schema} CASCADE`);
            await admin.end();
          },
        });
      },
    });
  }
  return targets;
}

/** Rows a transaction has read from a table so far: sequential, and through any of its indexes. */
export interface TableReads {
  seqScans: number;
  seqRows: number;
  indexRows: number;
}

/**
 * What this transaction's connection has read from `table` (pg_stat_xact_*): for tests that
 * check a query reads only what it must, on PGlite and PostgreSQL alike. Compare two readings
 * inside one transaction: until its stats are reported, a connection's earlier transactions can
 * count here too.
 *
 * @example const before = await tableReads(tx, "incident_sensor"); await work(tx); const after = await tableReads(tx, "incident_sensor");
 */
export async function tableReads(sql: Sql | TransactionSql, table: string): Promise<TableReads> {
  const [r] = await sql<TableReads[]>`
    SELECT pg_stat_get_xact_numscans(c.oid)::int AS "seqScans",
      pg_stat_get_xact_tuples_returned(c.oid)::int AS "seqRows",
      (SELECT coalesce(sum(pg_stat_get_xact_tuples_returned(x.indexrelid)), 0)::int
        FROM pg_index x WHERE x.indrelid = c.oid) AS "indexRows"
    FROM pg_class c WHERE c.oid = ${table}::regclass`;
  return r;
}
