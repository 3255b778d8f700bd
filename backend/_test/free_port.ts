// Test helper: a TCP port that was free a moment ago, for services that must know each other's port.
import { createServer } from "node:net";

/** Every port handed out in this process: two services asked for ports in a row never share one. */
const given = new Set<number>();

function askOs(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * Asks the OS for a free port on 127.0.0.1 and releases it. A port this process was given before
 * is asked again for: released, it may come back from the next call while its first taker has
 * not bound it yet.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await askOs();
    if (given.has(port)) continue;
    given.add(port);
    return port;
  }
}
