// Embedded PostgreSQL: PGlite served over a loopback TCP socket so postgres.js talks to it as to any server.
import { mkdir } from "node:fs/promises";
import { resolve } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";
import { takeLockFile } from "../../contracts/lock_file.ts";

export interface PgliteServer {
  /** A postgres:// URL for postgres.js. */
  url: string;
  /** Stops the socket server, then closes PGlite (flushing it to `dataDir` when one is used). */
  close(): Promise<void>;
}

/**
 * Starts PGlite (in memory, or persisted in `dataDir`) behind a socket server on 127.0.0.1 and a
 * free port. PGlite executes one statement at a time; the server queues statements and keeps a
 * transaction's statements together, and clients should still use a single connection.
 */
export async function startPgliteServer(options: { dataDir?: string } = {}): Promise<PgliteServer> {
  let unlock = async () => {};
  if (options.dataDir !== undefined) {
    // PGlite creates its data folder but not the folders above it (a fresh clone has no .data/).
    await mkdir(options.dataDir, { recursive: true });
    unlock = await lockDataDir(options.dataDir);
  }
  let db: PGlite | undefined;
  try {
    db = await PGlite.create(options.dataDir);
    // A few connections so a client reconnecting before the old socket is reaped is not refused.
    const server = new PGLiteSocketServer({ db, host: "127.0.0.1", port: 0, maxConnections: 4 });
    await server.start();
    const [host, port] = server.getServerConn().split(":");
    const open = db;
    return {
      url: `postgres://postgres@${host}:${port}/postgres`,
      close: async function closePgliteServer() {
        await server.stop();
        await open.close();
        await unlock();
      },
    };
  } catch (error) {
    await db?.close().catch(() => {});
    await unlock();
    throw error;
  }
}

/**
 * PGlite is one process's database: a second process opening the same folder (a second
 * `npm start` on other ports) writes its own copy of the files over the first one's, losing what
 * either stored and, once, leaving a folder that no longer starts. A lock file beside the folder
 * (`<folder>.lock`, not inside it: the folder is PGlite's) names the process that has it open; one
 * left by a killed process is taken over.
 */
function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  const path = `${resolve(dataDir)}.lock`;
  return takeLockFile(
    path,
    (pid) =>
      new Error(
        `in use by process ${pid}: another backend has this embedded database open; give each backend its own PGLITE_DATA_DIR (npm start: DATA_DIR moves only the engine's folder), or remove ${path} if that process is no backend`,
      ),
  );
}
