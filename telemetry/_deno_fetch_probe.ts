// Run by contained_fetch.test.ts under Deno with its built-in telemetry: three plain fetches and
// three contained ones in a row, printing the trace id active in the caller after each.
import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { trace } from "@opentelemetry/api";
import { containedFetch } from "./contained_fetch.ts";

const server = createServer((_, res) => res.end("ok")).listen(0, "127.0.0.1");
await once(server, "listening");
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
const active = () => trace.getActiveSpan()?.spanContext().traceId ?? "none";
for (const [name, get] of [
  ["contained", containedFetch],
  ["plain", fetch],
] as const) {
  for (let i = 0; i < 3; i++) {
    await (await get(url)).text();
    console.log(`${name} ${active()}`);
  }
}
server.close();
