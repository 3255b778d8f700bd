// The few things the entry point does differently on Node and Deno: env, serving, signals.
import type { Hono } from "hono";
import { inFlight } from "../contracts/in_flight.ts";

// Typed loosely on purpose: the Deno namespace is not in Node's type declarations.
// biome-ignore lint/suspicious/noExplicitAny: runtime detection of Deno
const deno = (globalThis as any).Deno as any;

/** True under Deno. */
export const isDeno = deno !== undefined;

/** The process environment as a plain object. */
export function readEnv(): Record<string, string | undefined> {
  return isDeno ? deno.env.toObject() : process.env;
}

export interface RunningServer {
  /** The bound port (useful with PORT=0). */
  port: number;
  /** Stops accepting, lets requests in flight finish until `signal` aborts, then cuts the rest. */
  close(signal: AbortSignal): Promise<void>;
}

/** Serves a Hono app with Deno.serve or @hono/node-server, resolving once listening. */
export async function serveApp(app: Hono, host: string, port: number): Promise<RunningServer> {
  if (isDeno) {
    let server: { shutdown(): Promise<void>; unref?(): void } | undefined;
    const counted = inFlight(app.fetch);
    const bound = await new Promise<number>((resolve) => {
      server = deno.serve(
        { hostname: host, port, onListen: (addr: { port: number }) => resolve(addr.port) },
        counted.handler,
      );
    });
    return {
      port: bound,
      close: async function closeDenoServer(signal: AbortSignal) {
        // Every request answered, then every answer written out (`shutdown()`), until the
        // deadline: a stop that went on to exit once the answers were given cut a large one
        // still being written to a slow reader (its body short of its Content-Length). The
        // live streams are ended by then (main.ts); a client holding its connection past its
        // answer (a refused upload, main.test.ts) does not hold `shutdown()`.
        const shutdown = server!.shutdown();
        await Promise.race([counted.idle(), abortion(signal)]);
        await Promise.race([shutdown, abortion(signal)]);
      },
    };
  }
  const { serve } = await import("@hono/node-server");
  const { Server: NetServer } = await import("node:net");
  let http: import("node:http").Server | undefined;
  const answers = answersInProgress();
  const bound = await new Promise<number>((resolve, reject) => {
    http = serve({ fetch: app.fetch, hostname: host, port }, (info) =>
      resolve(info.port),
    ) as import("node:http").Server;
    // A port in use or a host that does not resolve: the caller says so and stops.
    http.once("error", reject);
    // From its request until its answer is written out, or its connection gone ("close").
    http.on("request", (_request, response: import("node:http").ServerResponse) =>
      answers.track(new Promise((written) => response.once("close", written))),
    );
  });
  return {
    port: bound,
    close: function closeNodeServer(signal: AbortSignal) {
      return new Promise<void>((done) => {
        // Stops accepting. Not `http.close()`: it also destroys the connections it takes for
        // idle, among them one whose answer is given (`res.end`) but still being written to a
        // slow reader, which got a body cut short of its Content-Length. The idle ones are
        // closed once every answer is written out; at the deadline, all of them.
        NetServer.prototype.close.call(http!, () => done());
        signal.addEventListener("abort", () => http!.closeAllConnections(), { once: true });
        answers.whenIdle(() => http!.closeIdleConnections());
      });
    },
  };
}

/**
 * Counts answers from their request until written out (`track`, with a promise that settles
 * then). `whenIdle(f)` calls `f` when none is, at once and every time the count drops to none
 * again (a keep-alive client's next request, answered during the stop).
 */
function answersInProgress() {
  let open = 0;
  const onIdle: (() => void)[] = [];
  const end = () => {
    if (--open === 0) for (const f of onIdle) f();
  };
  return {
    track(written: Promise<unknown>) {
      open++;
      written.then(end, end);
    },
    whenIdle(f: () => void) {
      onIdle.push(f);
      if (open === 0) f();
    },
  };
}

function abortion(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) =>
    signal.addEventListener("abort", () => resolve(), { once: true }),
  );
}

/**
 * Calls `handler` once on the first SIGINT, SIGTERM or SIGHUP (the terminal that ran it closed).
 * Returns the same once-only stop for other reasons (the launcher gone): `stopFor("launcher gone")`.
 */
export function onShutdownSignal(handler: (signal: string) => void): (reason: string) => void {
  let called = false;
  const stopFor = (name: string) => {
    if (called) return;
    called = true;
    handler(name);
  };
  for (const name of ["SIGINT", "SIGTERM", "SIGHUP"]) {
    if (isDeno) deno.addSignalListener(name, () => stopFor(name));
    else process.on(name, () => stopFor(name));
  }
  return stopFor;
}

/** Ends the process with `code`. */
export function exit(code: number): never {
  if (isDeno) deno.exit(code);
  process.exit(code);
}
