// The backend's database access: connection (PostgreSQL or embedded PGlite) and migrations.
export {
  type Database,
  type DatabaseKind,
  type OpenDatabaseOptions,
  openDatabase,
} from "./database.ts";
export { loadMigrations, MIGRATIONS_DIR, type Migration, migrate } from "./migrate.ts";
