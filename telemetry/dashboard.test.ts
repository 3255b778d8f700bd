// The Grafana dashboard queries the Prometheus names of instruments the services really create.
import assert from "node:assert/strict";
import { test } from "node:test";
import { metrics as sdk } from "@opentelemetry/sdk-node";
import { dashboard, type Json } from "./_stack_config.ts";
import { createBackendMetrics, createEngineMetrics } from "./metrics.ts";
import { registerResourceMetrics } from "./resources.ts";

// How the collector's prometheus exporter spells OTel units as name suffixes.
const UNIT_SUFFIX: Record<string, string> = { ms: "milliseconds", s: "seconds", By: "bytes" };

/** Every instrument of the catalogue, as the Prometheus series names it turns into. */
async function prometheusNames(): Promise<Set<string>> {
  const reader = new sdk.PeriodicExportingMetricReader({
    exporter: new sdk.InMemoryMetricExporter(sdk.AggregationTemporality.CUMULATIVE),
    exportIntervalMillis: 60_000,
  });
  const provider = new sdk.MeterProvider({ readers: [reader] });
  const meter = provider.getMeter("catalogue");
  const instruments: Json[] = [
    ...Object.values(createEngineMetrics(meter)),
    ...Object.values(createBackendMetrics(meter)),
  ];
  // A value in every instrument, so each one shows up in the collection.
  for (const instrument of instruments) {
    if ("record" in instrument) instrument.record(1);
    else if ("add" in instrument) instrument.add(1);
    else instrument.addCallback((result: Json) => result.observe(1));
  }
  // The GPU gauges observe nothing on a host without a GPU, so their names are taken as they
  // are created rather than from the collection.
  const names = new Set<string>();
  const watched = Object.create(meter);
  watched.createObservableGauge = (name: string, options: { unit?: string }) => {
    names.add(
      `${name.replaceAll(".", "_")}_${options.unit === "1" ? "ratio" : UNIT_SUFFIX[options.unit ?? ""]}`,
    );
    return meter.createObservableGauge(name, options);
  };
  registerResourceMetrics(watched);
  const { resourceMetrics } = await reader.collect();
  await provider.shutdown();

  for (const metric of resourceMetrics.scopeMetrics.flatMap((s) => s.metrics)) {
    const { name, unit } = metric.descriptor;
    const type = metric.dataPointType;
    let base = name.replaceAll(".", "_");
    if (UNIT_SUFFIX[unit]) base += `_${UNIT_SUFFIX[unit]}`;
    if (unit === "1" && type === sdk.DataPointType.GAUGE) base += "_ratio";
    if (type === sdk.DataPointType.HISTOGRAM) {
      for (const suffix of ["_bucket", "_sum", "_count"]) names.add(base + suffix);
    } else if (type === sdk.DataPointType.SUM && metric.isMonotonic) names.add(`${base}_total`);
    else names.add(base);
  }
  return names;
}

const expressions: string[] = dashboard.panels.flatMap((p: Json) =>
  p.targets.map((t: Json) => t.expr),
);
const OURS = /\b(?:engine|backend|process|gpu)_[a-z_]+\b/g;

test("dashboard queries only series that the instrument catalogue produces", async () => {
  const names = await prometheusNames();
  const queried = new Set(expressions.flatMap((e) => e.match(OURS) ?? []));
  assert.ok(queried.size > 10, `queries ${[...queried]}`);
  for (const series of queried) assert.ok(names.has(series), `${series} is not produced`);
});

test("dashboard shows latency percentiles, throughput, queue depth, alerts, CPU and GPU", () => {
  const all = expressions.join("\n");
  for (const needle of [
    "histogram_quantile(0.95, sum by (le) (rate(engine_frame_latency_milliseconds_bucket",
    "engine_frames_accepted_total",
    "engine_frames_rejected_total",
    "engine_queue_depth",
    "engine_alerts_sent_total",
    "engine_alerts_failed_total",
    "engine_alerts_retried_total",
    "process_cpu_utilization_ratio",
    "process_memory_usage_bytes",
    "gpu_utilization_ratio",
    "gpu_memory_used_bytes",
    "traces_span_metrics_calls_total",
  ]) {
    assert.ok(all.includes(needle), `no panel queries ${needle}`);
  }
  const ids = dashboard.panels.map((p: Json) => p.id);
  assert.equal(new Set(ids).size, ids.length, "panel ids are unique");
  for (const p of dashboard.panels) assert.equal(p.datasource.uid, "prometheus", p.title);
});
