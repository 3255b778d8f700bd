// Requests a server is still answering: under Deno a stop waits for them, not for every connection left open.

/**
 * Wraps a fetch handler to count the requests it is answering. `idle()` resolves once none is
 * (at once when none is now). Deno's `server.shutdown()` also waits for connections a client
 * keeps open after its answer (a keep-alive, an upload refused `408`/`413` that the client goes
 * on sending), and Deno gives no way to close them; Node's server closes the idle ones. A stop
 * that waits for `idle()` instead ends when the last answer is given, as on Node, rather than at
 * its deadline (`SHUTDOWN_TIMEOUT_MS`, past a container's grace period).
 *
 * @example
 * const counted = inFlight(app.fetch);
 * const server = Deno.serve(options, counted.handler);
 * await Promise.race([server.shutdown(), counted.idle()]);
 */
export function inFlight<Rest extends unknown[]>(
  handler: (request: Request, ...rest: Rest) => Response | Promise<Response>,
): {
  handler: (request: Request, ...rest: Rest) => Promise<Response>;
  idle: () => Promise<void>;
} {
  let active = 0;
  let waiting: (() => void)[] = [];
  return {
    handler: async (request, ...rest) => {
      active++;
      try {
        return await handler(request, ...rest);
      } finally {
        if (--active === 0) {
          const done = waiting;
          waiting = [];
          for (const resolve of done) resolve();
        }
      }
    },
    idle: () =>
      active === 0 ? Promise.resolve() : new Promise<void>((resolve) => waiting.push(resolve)),
  };
}
