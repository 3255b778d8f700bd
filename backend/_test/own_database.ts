// A database of its own for a backend process under test: a fresh PostgreSQL database when DATABASE_URL is set, else PGlite in memory.
import postgres from "postgres";

/** The backend's database settings and how to drop the database afterwards. */
export interface OwnDatabase {
  env: Record<string, string>;
  drop(): Promise<void>;
}

/**
 * A fresh PostgreSQL database named `<prefix>_<pid>_<time>` on DATABASE_URL's server (dropped,
 * connections forced off, by `drop`), or, without DATABASE_URL, PGlite in memory.
 *
 * @example const db = await ownDatabase("fp_loop"); spawnService(cmd, { ...db.env }); await db.drop();
 */
export async function ownDatabase(prefix: string): Promise<OwnDatabase> {
  const url = process.env.DATABASE_URL;
  if (!url) return { env: { DATABASE_URL: "" }, drop: async () => {} };
  return ownPostgresDatabase(url, prefix);
}

/** A fresh PostgreSQL database on `url`'s server; see {@link ownDatabase}. */
export async function ownPostgresDatabase(url: string, prefix: string): Promise<OwnDatabase> {
  const name = `${prefix}_${process.pid}_${Date.now().toString(36)}`;
  const admin = postgres(url, { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE ${name}`);
  const own = new URL(url);
  own.pathname = `/${name}`;
  return {
    env: { DATABASE_URL: own.toString() },
    async drop() {
      await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    },
  };
}
