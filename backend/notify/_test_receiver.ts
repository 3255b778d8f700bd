// Test helper: a real HTTP receiver of notifications that records every request and answers as told.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** One request as it arrived. */
export interface Received {
  /** The path, i.e. which route sent it (tests give each route its own path). */
  path: string;
  /** `webhook-id`: what a receiver de-duplicates by. */
  id: string;
  headers: Headers;
  body: string;
  /** performance.now() at arrival. */
  at: number;
  /** The status it was answered with; undefined while held or when the sender went away. */
  answered?: number;
}

/** How to answer: a status (and headers), or `"hold"` to never answer. */
export type Answer = { status: number; headers?: Record<string, string>; body?: string } | "hold";

export interface Receiver {
  url: string;
  requests: Received[];
  /** Decides each answer; by default 200. A promise holds the answer until it settles. */
  answer: (r: Received) => Answer | Promise<Answer>;
  /** Requests on one path. */
  on(path: string): Received[];
  /** Resolves when `probe` holds for the recorded requests, or rejects at the deadline. */
  until(probe: (requests: Received[]) => boolean, what: string, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** Starts a receiver on 127.0.0.1 and a free port. */
export async function startReceiver(): Promise<Receiver> {
  const requests: Received[] = [];
  const waiters = new Set<() => void>();
  const held = new Set<ServerResponse>();
  const receiver: Receiver = {
    url: "",
    requests,
    answer: () => ({ status: 200 }),
    on: (path) => requests.filter((r) => r.path === path),
    until(probe, what, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const deadline = AbortSignal.timeout(timeoutMs);
        const check = () => {
          if (!probe(requests)) return;
          waiters.delete(check);
          deadline.removeEventListener("abort", onTimeout);
          resolve();
        };
        const onTimeout = () => {
          waiters.delete(check);
          const seen = requests.map((r) => `${r.path} ${r.id} ${r.answered ?? "-"}`).join("\n");
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; got:\n${seen}`));
        };
        deadline.addEventListener("abort", onTimeout, { once: true });
        waiters.add(check);
        check();
      });
    },
    async close() {
      for (const res of held) res.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  const notify = () => {
    for (const w of [...waiters]) w();
  };
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const headers = new Headers();
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers.set(k, v);
    const received: Received = {
      path: req.url ?? "/",
      id: headers.get("webhook-id") ?? "",
      headers,
      body: Buffer.concat(chunks).toString("utf8"),
      at: performance.now(),
    };
    requests.push(received);
    notify();
    // Held until answered (close() cuts it): a promised answer may come late, or never.
    held.add(res);
    res.once("close", () => held.delete(res));
    const answer = await receiver.answer(received);
    if (answer !== "hold") {
      held.delete(res);
      res.writeHead(answer.status, answer.headers);
      res.end(answer.body ?? "");
      received.answered = answer.status;
    }
    notify();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return receiver;
}
