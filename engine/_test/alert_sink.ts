// A real HTTP alert receiver for tests: records deliveries and can fail, hang, go down and recover.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import * as v from "valibot";
import { type Alert, alertSchema } from "../../contracts/alert.ts";

export interface SinkRequest {
  headers: Record<string, string>;
  body: string;
}

/** How the sink answers: a status (with an optional Retry-After), or never ("hang"). */
export type SinkAnswer = number | { status: number; retryAfter?: string } | "hang";

export interface AlertSink {
  /** Full alert URL (`http://127.0.0.1:PORT/api/v1/alert`). */
  readonly url: string;
  readonly origin: string;
  /** Every request received, in order. */
  readonly requests: SinkRequest[];
  /** Answers used first, one per request; then `answer`. */
  script: SinkAnswer[];
  /** Default answer once the script is used up (201). */
  answer: SinkAnswer;
  /** Distinct `alert_id`s received with a 2xx answer. */
  readonly delivered: Set<string>;
  /** Stops listening and drops open connections (backend down). */
  down(): Promise<void>;
  /** Listens again on the same port (backend recovered). */
  up(): Promise<void>;
  close(): Promise<void>;
}

/** Starts a sink on 127.0.0.1 with an ephemeral port. */
export async function startAlertSink(): Promise<AlertSink> {
  const sockets = new Set<Socket>();
  const requests: SinkRequest[] = [];
  const delivered = new Set<string>();
  const sink = {
    script: [] as SinkAnswer[],
    answer: 201 as SinkAnswer,
  };
  const server = createServer(function onAlert(req: IncomingMessage, res: ServerResponse) {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) headers[k] = String(v);
      requests.push({ headers, body });
      const answer = sink.script.length ? sink.script.shift()! : sink.answer;
      if (answer === "hang") return;
      const { status, retryAfter } = typeof answer === "number" ? { status: answer } : answer;
      if (status < 300) {
        try {
          delivered.add(JSON.parse(body).alert_id);
        } catch {
          // Not an alert; recorded in `requests` for the test to inspect.
        }
      }
      const extra: Record<string, string> = retryAfter ? { "retry-after": retryAfter } : {};
      res.writeHead(status, { "content-type": "application/json", ...extra });
      res.end(status < 300 ? '{"status":"ok"}' : '{"error":"internal_error","message":"test"}');
    });
  });
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        server.off("error", reject);
        resolve((server.address() as AddressInfo).port);
      });
    });
  const stop = () =>
    new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      if (!server.listening) return resolve();
      server.close(() => resolve());
    });
  const port = await listen(0);
  const origin = `http://127.0.0.1:${port}`;
  return Object.assign(sink, {
    url: `${origin}/api/v1/alert`,
    origin,
    requests,
    delivered,
    down: stop,
    async up() {
      await listen(port);
    },
    close: stop,
  });
}

/**
 * The alerts `sink` received for `stream`, the first delivery of each `alert_id`, in order,
 * each parsed by the strict alert contract (a body it refuses fails the test).
 */
export function alertsOf(sink: AlertSink, stream: string): Alert[] {
  const seen = new Set<string>();
  const out: Alert[] = [];
  for (const r of sink.requests) {
    const body = JSON.parse(r.body);
    if (body.stream_id !== stream || seen.has(body.alert_id)) continue;
    seen.add(body.alert_id);
    out.push(v.parse(alertSchema, body));
  }
  return out;
}
