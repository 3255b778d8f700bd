// Run by setup.test.ts under Deno: a span and a counter through @opentelemetry/api, then it stays
// alive (periodic exports carry the observable gauges) until the test ends it.
import { metrics, trace } from "@opentelemetry/api";
import { startTelemetry } from "./setup.ts";

await startTelemetry("deno-probe");
trace.getTracer("probe").startActiveSpan("deno span", (span) => {
  span.setAttribute("runtime", "deno");
  span.end();
});
metrics.getMeter("probe").createCounter("probe.deno").add(2);
setInterval(() => {}, 1000);
