// Embedded PostgreSQL: PGlite served over a loopback TCP socket so postgres.js talks to it as to any server.
import { mkdir } from "node:fs/promises";
import { PGlite } from "@electric-sql/pglite";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";

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
  // PGlite creates its data folder but not the folders above it (a fresh clone has no .data/).
  if (options.dataDir !== undefined) await mkdir(options.dataDir, { recursive: true });
  const db = await PGlite.create(options.dataDir);
  // A few connections so a client reconnecting before the old socket is reaped is not refused.
  const server = new PGLiteSocketServer({ db, host: "127.0.0.1", port: 0, maxConnections: 4 });
  try {
    await server.start();
  } catch (error) {
    await db.close();
    throw error;
  }
  const [host, port] = server.getServerConn().split(":");
  return {
    url: `postgres://postgres@${host}:${port}/postgres`,
    close: async function closePgliteServer() {
      await server.stop();
      await db.close();
    },
  };
}
