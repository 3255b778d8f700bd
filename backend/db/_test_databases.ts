// Test helper: a fresh migrated database per test file, on PGlite always and PostgreSQL when configured.
import postgres from "postgres";
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
