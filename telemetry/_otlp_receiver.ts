// An in-process OTLP/HTTP JSON receiver for tests: collects the spans and metrics services export.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { gunzipSync } from "node:zlib";

type AnyValue = {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
  arrayValue?: { values?: AnyValue[] };
};
type KeyValue = { key: string; value: AnyValue };
export type Attributes = Record<string, unknown>;

/** A span as received, with ids in hex and attributes flattened. */
export interface ReceivedSpan {
  service: string;
  scope: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  /** OTLP SpanKind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  attributes: Attributes;
  links: { traceId: string; spanId: string; attributes: Attributes }[];
  statusCode: number;
}

/** One metric data point as received. */
export interface ReceivedPoint {
  service: string;
  metric: string;
  unit: string;
  attributes: Attributes;
  /** Gauge/sum value, or a histogram's count. */
  value: number;
}

function anyValue(value: AnyValue | undefined): unknown {
  if (!value) return undefined;
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.intValue !== undefined) return Number(value.intValue);
  if (value.doubleValue !== undefined) return value.doubleValue;
  if (value.boolValue !== undefined) return value.boolValue;
  if (value.arrayValue) return (value.arrayValue.values ?? []).map(anyValue);
  return undefined;
}

function attrs(list: KeyValue[] | undefined): Attributes {
  const out: Attributes = {};
  for (const { key, value } of list ?? []) out[key] = anyValue(value);
  return out;
}

// biome-ignore lint/suspicious/noExplicitAny: OTLP JSON is walked structurally; shapes are checked by the tests.
type Json = any;

/** Starts the receiver on 127.0.0.1, port 0. Point `OTEL_EXPORTER_OTLP_ENDPOINT` at `url`. */
export async function startOtlpReceiver() {
  const spans: ReceivedSpan[] = [];
  const points: ReceivedPoint[] = [];
  const errors: string[] = [];

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      try {
        let body = Buffer.concat(chunks);
        if (req.headers["content-encoding"] === "gzip") body = gunzipSync(body);
        if (!String(req.headers["content-type"]).includes("json")) {
          throw new Error(`expected OTLP JSON, got ${req.headers["content-type"]}`);
        }
        const json: Json = JSON.parse(body.toString("utf8"));
        if (req.url === "/v1/traces") collectSpans(json);
        else if (req.url === "/v1/metrics") collectMetrics(json);
        else if (req.url !== "/v1/logs") throw new Error(`unexpected path ${req.url}`);
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      } catch (error) {
        errors.push(String(error));
        res.writeHead(400).end();
      }
    });
  });

  function collectSpans(json: Json) {
    for (const rs of json.resourceSpans ?? []) {
      const service = String(attrs(rs.resource?.attributes)["service.name"]);
      for (const ss of rs.scopeSpans ?? []) {
        for (const s of ss.spans ?? []) {
          spans.push({
            service,
            scope: ss.scope?.name ?? "",
            traceId: s.traceId,
            spanId: s.spanId,
            parentSpanId: s.parentSpanId ?? "",
            name: s.name,
            kind: s.kind,
            attributes: attrs(s.attributes),
            links: (s.links ?? []).map((l: Json) => ({
              traceId: l.traceId,
              spanId: l.spanId,
              attributes: attrs(l.attributes),
            })),
            statusCode: s.status?.code ?? 0,
          });
        }
      }
    }
  }

  function collectMetrics(json: Json) {
    for (const rm of json.resourceMetrics ?? []) {
      const service = String(attrs(rm.resource?.attributes)["service.name"]);
      for (const sm of rm.scopeMetrics ?? []) {
        for (const m of sm.metrics ?? []) {
          const data = m.sum ?? m.gauge ?? m.histogram ?? m.exponentialHistogram;
          for (const p of data?.dataPoints ?? []) {
            const value = p.asDouble ?? p.asInt ?? p.count ?? 0;
            points.push({
              service,
              metric: m.name,
              unit: m.unit ?? "",
              attributes: attrs(p.attributes),
              value: Number(value),
            });
          }
        }
      }
    }
  }

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    points,
    /** Bodies that were not OTLP JSON; a test expects none. */
    errors,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export type OtlpReceiver = Awaited<ReturnType<typeof startOtlpReceiver>>;

/** Polls `check` until it returns a value (not undefined/false) or the deadline passes. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 20_000,
): Promise<T> {
  const signal = AbortSignal.timeout(timeoutMs);
  while (true) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (signal.aborted) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
