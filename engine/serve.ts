// Serves a fetch handler on the running runtime: Deno.serve under Deno, @hono/node-server under Node.
import { inFlight } from "../contracts/in_flight.ts";

export interface RunningServer {
  /** The port actually bound (useful with port 0). */
  port: number;
  /**
   * Stops accepting connections and closes idle ones; resolves when the server is closed, or
   * once `deadline` aborts, cutting the connections still open (a client that never finishes
   * its upload would otherwise hold the shutdown forever under Deno).
   */
  close(deadline?: AbortSignal): Promise<void>;
}

/** A fetch handler; under Node, `env.incoming` is the server's `IncomingMessage`. */
type FetchHandler = (request: Request, env?: unknown) => Response | Promise<Response>;

interface DenoServe {
  serve(
    options: { hostname: string; port: number; onListen?: (addr: { port: number }) => void },
    handler: FetchHandler,
  ): { addr: { port: number }; shutdown(): Promise<void> };
}

/**
 * Starts listening on `hostname:port` and resolves once bound.
 *
 * @example const server = await serve(app.fetch, { hostname: "0.0.0.0", port: 9000 });
 */
export async function serve(
  fetch: FetchHandler,
  options: { hostname: string; port: number },
): Promise<RunningServer> {
  const deno = (globalThis as { Deno?: DenoServe }).Deno;
  if (deno) {
    // Deno.serve binds before it returns; the empty onListen replaces its console banner.
    const counted = inFlight(fetch);
    const server = deno.serve({ ...options, onListen: () => {} }, counted.handler);
    return {
      port: server.addr.port,
      // Closed once every request is answered: connections left open after their answer (a
      // refused upload the client goes on sending) would hold the stop until its deadline.
      close: (deadline) => Promise.race([server.shutdown(), counted.idle(), aborted(deadline)]),
    };
  }
  // Imported here so that Deno never loads the Node adapter.
  const { serve: nodeServe } = await import("@hono/node-server");
  return await new Promise<RunningServer>((resolve, reject) => {
    const server = nodeServe({ fetch, hostname: options.hostname, port: options.port }, (info) => {
      resolve({
        port: info.port,
        close: (deadline) =>
          new Promise<void>((done) => {
            server.close(() => done());
            if ("closeIdleConnections" in server) server.closeIdleConnections();
            deadline?.addEventListener(
              "abort",
              () => {
                if ("closeAllConnections" in server) server.closeAllConnections();
                done();
              },
              { once: true },
            );
          }),
      });
    });
    server.once("error", reject);
  });
}

/** Resolves when `signal` aborts (never without one). */
function aborted(signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) resolve();
    else signal?.addEventListener("abort", () => resolve(), { once: true });
  });
}
