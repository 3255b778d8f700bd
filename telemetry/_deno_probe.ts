// Run by setup.test.ts under Deno: one span and one counter through @opentelemetry/api.
import { metrics, trace } from "@opentelemetry/api";
import { startTelemetry } from "./setup.ts";

const stop = await startTelemetry("deno-probe");
trace.getTracer("probe").startActiveSpan("deno span", (span) => {
  span.setAttribute("runtime", "deno");
  span.end();
});
metrics.getMeter("probe").createCounter("probe.deno").add(2);
await stop();
