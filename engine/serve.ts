// Serves a fetch handler on the running runtime: Deno.serve under Deno, @hono/node-server under Node.
import { inFlight } from "../contracts/in_flight.ts";
import { delay } from "./_delay.ts";

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
      close: async (deadline) => {
        // Every request answered first; then `shutdown()`, which writes out the answers just
        // given (a stop that went on to exit at once cut an upload in progress, answered `503
        // shutting_down`, with no answer at all), bounded by a second: it also waits for
        // connections a client keeps open after its answer (a refused upload it goes on
        // sending), which would hold the stop until its deadline.
        await Promise.race([counted.idle(), aborted(deadline)]);
        await Promise.race([server.shutdown(), delay(FLUSH_MS, deadline)]);
      },
    };
  }
  // Imported here so that Deno never loads the Node adapter.
  const { serve: nodeServe } = await import("@hono/node-server");
  // Counted as under Deno: Node's `close()` cuts a connection whose request has been read whole
  // but whose answer has not begun (its `closeIdleConnections()` takes it for an idle one), so
  // an upload whose body ended during the stop, answered `503 shutting_down` a moment later,
  // got no answer at all (about one stop in three in engine/shutdown_upload.test.ts).
  const counted = inFlight(fetch);
  return await new Promise<RunningServer>((resolve, reject) => {
    const server = nodeServe(
      { fetch: counted.handler, hostname: options.hostname, port: options.port },
      (info) => {
        resolve({
          port: info.port,
          close: async (deadline) => {
            await Promise.race([counted.idle(), aborted(deadline)]);
            await new Promise<void>((done) => {
              const cut = () => {
                if ("closeAllConnections" in server) server.closeAllConnections();
                done();
              };
              server.close(() => done());
              if ("closeIdleConnections" in server) server.closeIdleConnections();
              if (deadline?.aborted) cut();
              else deadline?.addEventListener("abort", cut, { once: true });
            });
          },
        });
      },
    );
    // A client that half-closes its connection once its request is sent (`nc`, some gateways)
    // still gets its answer: Node's HTTP server otherwise aborts a request whose answer is not
    // written by the time the client's end arrives, and ends the connection with no answer at all
    // (any upload, whose answer waits for its decode). Node's own switch (`httpAllowHalfOpen`,
    // read by its server on the client's end) is not among its typed options.
    (server as { httpAllowHalfOpen?: boolean }).httpAllowHalfOpen = true;
    server.once("error", reject);
  });
}

/** How long a Deno stop waits for the answers given to be written out (`close`). */
const FLUSH_MS = 1000;

/** Resolves when `signal` aborts (never without one). */
function aborted(signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) resolve();
    else signal?.addEventListener("abort", () => resolve(), { once: true });
  });
}
