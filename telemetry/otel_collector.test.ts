// Static wiring checks of the telemetry path: services → collector → Jaeger and Prometheus → Grafana.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  collector,
  datasources,
  hostOf,
  type Json,
  jaeger,
  portOf,
  prometheus,
  services,
} from "./_stack_config.ts";

const KINDS = ["receivers", "processors", "exporters", "connectors", "extensions"] as const;
/** Component ids are `type` or `type/name`; the type decides what it is. */
const typeOf = (id: string) => id.split("/")[0];

/** Every pipeline of an OTel-Collector-style config, checked for references to defined parts. */
function checkPipelines(config: Json, file: string) {
  const used = new Set<string>();
  for (const [name, pipeline] of Object.entries<Json>(config.service.pipelines)) {
    assert.ok(pipeline.receivers?.length, `${file} ${name}: no receivers`);
    assert.ok(pipeline.exporters?.length, `${file} ${name}: no exporters`);
    for (const role of ["receivers", "processors", "exporters"] as const) {
      for (const id of pipeline[role] ?? []) {
        const defined =
          id in (config[role] ?? {}) || (role !== "processors" && id in (config.connectors ?? {}));
        assert.ok(defined, `${file} ${name}: ${role} ${id} is not defined`);
        used.add(`${id in (config.connectors ?? {}) ? "connectors" : role}:${id}`);
      }
    }
  }
  for (const id of config.service.extensions ?? []) {
    assert.ok(id in (config.extensions ?? {}), `${file}: extension ${id} is not defined`);
    used.add(`extensions:${id}`);
  }
  for (const kind of KINDS) {
    for (const id of Object.keys(config[kind] ?? {})) {
      assert.ok(used.has(`${kind}:${id}`), `${file}: ${kind} ${id} is defined but unused`);
    }
  }
}

const pipelinesWith = (config: Json, role: string, id: string) =>
  Object.entries<Json>(config.service.pipelines)
    .filter(([, p]) => (p[role] ?? []).includes(id))
    .map(([name]) => name.split("/")[0]);

describe("otel-collector.yaml", () => {
  test("collector pipelines reference only defined components, and every component is used", () => {
    checkPipelines(collector, "otel-collector.yaml");
  });

  test("collector feeds spanmetrics from traces into the metrics pipeline", () => {
    const [id] = Object.keys(collector.connectors).filter((c) => typeOf(c) === "spanmetrics");
    assert.ok(id, "a spanmetrics connector");
    assert.deepEqual(pipelinesWith(collector, "exporters", id), ["traces"]);
    assert.deepEqual(pipelinesWith(collector, "receivers", id), ["metrics"]);
    // Jaeger's Monitor tab reads the default namespace with milliseconds.
    assert.equal(
      collector.connectors[id].namespace ?? "traces.span.metrics",
      "traces.span.metrics",
    );
    assert.equal(collector.connectors[id].histogram?.unit ?? "ms", "ms");
  });

  test("collector limits memory first in every pipeline", () => {
    for (const [name, pipeline] of Object.entries<Json>(collector.service.pipelines)) {
      assert.equal(typeOf(pipeline.processors[0]), "memory_limiter", name);
    }
  });

  test("collector receives OTLP where the services send it", () => {
    const http = portOf(collector.receivers.otlp.protocols.http.endpoint);
    const grpc = portOf(collector.receivers.otlp.protocols.grpc.endpoint);
    for (const name of ["engine", "engine-gpu", "backend"]) {
      const env = services[name].environment;
      const endpoint = env.OTEL_EXPORTER_OTLP_ENDPOINT;
      assert.equal(hostOf(endpoint), "otel-collector", name);
      const expected = env.OTEL_EXPORTER_OTLP_PROTOCOL === "grpc" ? grpc : http;
      assert.equal(portOf(endpoint), expected, `${name} sends OTLP to ${endpoint}`);
      assert.ok(env.OTEL_SERVICE_NAME, `${name} names its service`);
    }
  });

  test("collector exports traces to Jaeger's OTLP receiver", () => {
    const [id] = pipelinesWith(collector, "exporters", "otlp/jaeger").length ? ["otlp/jaeger"] : [];
    assert.ok(id, "the traces pipeline exports to otlp/jaeger");
    const endpoint = collector.exporters[id].endpoint;
    assert.equal(endpoint.split(":")[0], "jaeger");
    assert.ok(services.jaeger, "a jaeger service");
    assert.equal(portOf(endpoint), portOf(jaeger.receivers.otlp.protocols.grpc.endpoint));
    assert.equal(collector.exporters[id].tls?.insecure, true, "plain gRPC inside the network");
  });

  test("Prometheus scrapes the collector's prometheus exporter", () => {
    const exporterPort = portOf(collector.exporters.prometheus.endpoint);
    assert.deepEqual(pipelinesWith(collector, "exporters", "prometheus"), ["metrics"]);
    const targets = prometheus.scrape_configs.flatMap((s: Json) =>
      s.static_configs.flatMap((c: Json) => c.targets),
    );
    assert.ok(targets.includes(`otel-collector:${exporterPort}`), `targets ${targets}`);
    const job = prometheus.scrape_configs.find((s: Json) =>
      s.static_configs.some((c: Json) => c.targets.includes(`otel-collector:${exporterPort}`)),
    );
    assert.equal(job.honor_labels, true, "series keep their service's job label");
  });
});

describe("Jaeger and Grafana", () => {
  test("Jaeger pipelines reference only defined components", () => {
    checkPipelines(jaeger, "jaeger.yaml");
  });

  test("Jaeger stores traces it receives and its Monitor tab reads Prometheus", () => {
    const storage = jaeger.extensions.jaeger_storage;
    const query = jaeger.extensions.jaeger_query.storage;
    assert.ok(storage.backends[query.traces], `trace storage ${query.traces}`);
    assert.equal(jaeger.exporters.jaeger_storage_exporter.trace_storage, query.traces);
    const metrics = storage.metric_backends[query.metrics]?.prometheus;
    assert.ok(metrics, `metric storage ${query.metrics} is a prometheus backend`);
    assert.equal(hostOf(metrics.endpoint), "prometheus");
    assert.ok(
      services.prometheus.ports.some((p: string) => p.endsWith(`:${portOf(metrics.endpoint)}`)),
    );
    assert.equal(metrics.normalize_calls, true);
    assert.equal(metrics.normalize_duration, true);
  });

  test("Jaeger's UI listens where compose publishes it and Grafana looks for it", () => {
    const uiPort = portOf(jaeger.extensions.jaeger_query.http?.endpoint ?? ":16686");
    assert.equal(uiPort, 16686);
    assert.ok(services.jaeger.ports.includes(`${uiPort}:${uiPort}`));
    assert.ok(services.jaeger.healthcheck.test.join(" ").includes(`:${uiPort}/`));
  });

  test("Grafana data sources point at compose services on their listening ports", () => {
    const byType = new Map(datasources.datasources.map((d: Json) => [d.type, d]));
    const prom = byType.get("prometheus") as Json;
    const jg = byType.get("jaeger") as Json;
    assert.equal(hostOf(prom.url), "prometheus");
    assert.ok(services.prometheus.healthcheck.test.join(" ").includes(`:${portOf(prom.url)}/`));
    assert.equal(hostOf(jg.url), "jaeger");
    assert.equal(portOf(jg.url), 16686);
    assert.equal(prom.isDefault, true);
  });
});
