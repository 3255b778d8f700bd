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
      // Closed once every request is answered: a browser's keep-alive or a live page's event
      // stream (answered, still open) would otherwise hold the stop until its deadline.
      close: async function closeDenoServer(signal: AbortSignal) {
        await Promise.race([server!.shutdown(), counted.idle(), abortion(signal)]);
      },
    };
  }
  const { serve } = await import("@hono/node-server");
  let http: import("node:http").Server | undefined;
  const bound = await new Promise<number>((resolve, reject) => {
    http = serve({ fetch: app.fetch, hostname: host, port }, (info) =>
      resolve(info.port),
    ) as import("node:http").Server;
    // A port in use or a host that does not resolve: the caller says so and stops.
    http.once("error", reject);
  });
  return {
    port: bound,
    close: function closeNodeServer(signal: AbortSignal) {
      return new Promise<void>((done) => {
        http!.close(() => done());
        http!.closeIdleConnections();
        signal.addEventListener("abort", () => http!.closeAllConnections(), { once: true });
      });
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
