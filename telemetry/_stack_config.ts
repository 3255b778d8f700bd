// The compose stack's config files, parsed once for the wiring tests.
import { readFileSync } from "node:fs";
import { parse } from "yaml";

// biome-ignore lint/suspicious/noExplicitAny: parsed YAML is walked structurally and asserted on.
export type Json = any;
export const root = new URL("../", import.meta.url);
export const read = (path: string) => readFileSync(new URL(path, root), "utf8");
export const yaml = (path: string): Json => parse(read(path), { merge: true });

export const compose = yaml("compose.yaml");
export const collector = yaml("otel-collector.yaml");
export const jaeger = yaml("telemetry/compose/jaeger.yaml");
export const prometheus = yaml("telemetry/compose/prometheus.yaml");
export const datasources = yaml(
  "telemetry/compose/grafana/provisioning/datasources/datasources.yaml",
);
export const dashboards = yaml("telemetry/compose/grafana/provisioning/dashboards/dashboards.yaml");
export const dockerfile = read("Dockerfile");
export const scripts = JSON.parse(read("package.json")).scripts as Record<string, string>;
export const services: Record<string, Json> = compose.services;

/** The port a `host:port` or `scheme://host:port` endpoint names. */
export const portOf = (endpoint: string) => Number(/:(\d+)(\/.*)?$/.exec(endpoint)?.[1]);
export const hostOf = (url: string) => new URL(url).hostname;
export const containerPorts = (svc: Json) =>
  (svc.ports ?? []).map((p: string) => Number(String(p).split(":").at(-1)));
/** The container path a host file or folder is mounted at, for `./x:/y[:ro]` volumes. */
export const mountOf = (svc: Json, hostPath: string) =>
  (svc.volumes ?? []).find((v: string) => v.startsWith(`./${hostPath}:`))?.split(":")[1];

export const dashboard: Json = JSON.parse(
  read("telemetry/compose/grafana/dashboards/anomaly_stream.json"),
);
