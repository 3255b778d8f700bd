// A TCP proxy whose server-to-client direction can be held, to lose an answer after the server acted.
import { createServer, type Socket, connect as tcpConnect } from "node:net";

export interface TcpProxy {
  port: number;
  /** While held, bytes from the server are kept back (the client sees no answer). */
  hold: boolean;
  close(): Promise<void>;
}

/** Listens on a free port of 127.0.0.1 and forwards each connection to `targetPort`. */
export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  const proxy = { port: 0, hold: false } as TcpProxy;
  const server = createServer((client) => {
    const upstream = tcpConnect(targetPort, "127.0.0.1");
    sockets.add(client);
    sockets.add(upstream);
    const held: Buffer[] = [];
    client.on("data", (chunk) => upstream.write(chunk));
    upstream.on("data", (chunk) => {
      if (proxy.hold) held.push(chunk);
      else client.write(chunk);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("error", end);
    client.on("close", end);
    upstream.on("error", end);
    upstream.on("close", end);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  proxy.port = (server.address() as { port: number }).port;
  proxy.close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return proxy;
}
