// Static wiring checks of compose.yaml, otel-collector.yaml and the dashboard configs they mount.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { describe, test } from "node:test";
import { NODE_SERVICE_ARGS } from "../launch.ts";
import {
  containerPorts,
  dashboards,
  dockerfile,
  hostOf,
  type Json,
  mountOf,
  portOf,
  root,
  scripts,
  services,
} from "./_stack_config.ts";

describe("compose.yaml", () => {
  test("compose pins every image to a version", () => {
    for (const [name, svc] of Object.entries(services)) {
      if (!svc.image || svc.build) continue; // built here, tagged for reuse
      const tag = svc.image.split(":")[1] ?? "";
      assert.match(tag, /\d/, `${name}: image ${svc.image} has no version tag`);
      assert.doesNotMatch(tag, /latest/, `${name}: image ${svc.image}`);
    }
    for (const [, image] of dockerfile.matchAll(/^ARG \w+_IMAGE=(\S+)$/gm)) {
      assert.match(image.split(":")[1] ?? "", /^\d+\.\d+\.\d+/, `Dockerfile base ${image}`);
    }
  });

  test("compose builds from Dockerfile targets that exist and run as a non-root user", () => {
    const stages = new Map<string, string>();
    for (const block of dockerfile.split(/^(?=FROM )/m).slice(1)) {
      stages.set(/^FROM \S+ AS (\S+)/.exec(block)![1], block);
    }
    for (const [name, svc] of Object.entries(services)) {
      if (!svc.build) continue;
      const stage = stages.get(svc.build.target);
      assert.ok(stage, `${name}: build target ${svc.build.target} missing from Dockerfile`);
      const user = /^USER (\S+)/m.exec(stage)?.[1];
      assert.ok(user && user !== "root" && user !== "0", `${name}: stage runs as ${user}`);
    }
    // CUDA libraries are fetched by npm ci only in the dependency stage of the gpu target.
    assert.match(stages.get("deps-gpu")!, /ONNXRUNTIME_NODE_INSTALL=cuda12[\s\S]*npm ci/);
    assert.match(stages.get("deps-cpu")!, /ONNXRUNTIME_NODE_INSTALL=skip[\s\S]*npm ci/);
    assert.match(stages.get("gpu")!, /COPY --from=deps-gpu \S* ?\/app\/node_modules/);
    assert.match(stages.get("cpu")!, /COPY --from=deps-cpu \S* ?\/app\/node_modules/);
  });

  test("compose runs the engine and the backend as their npm scripts do", () => {
    for (const name of ["engine", "backend"]) {
      const entry = services[name].command.join(" ");
      // The image's ENTRYPOINT is `node ...NODE_SERVICE_ARGS` (launch.test.ts checks it).
      assert.equal(
        scripts[name],
        ["node", ...NODE_SERVICE_ARGS, entry].join(" "),
        `${name} command vs npm run ${name}`,
      );
      assert.ok(existsSync(new URL(entry, root)), `${entry} exists`);
    }
  });

  test("compose health-checks the services on /health/ready at their configured ports", () => {
    const portVar = { engine: "APP_PORT", "engine-gpu": "APP_PORT", backend: "PORT" } as const;
    for (const [name, variable] of Object.entries(portVar)) {
      const svc = services[name];
      const port = Number(svc.environment[variable]);
      const probe = svc.healthcheck.test.join(" ");
      assert.ok(probe.includes(`:${port}/health/ready`), `${name} probes ${probe}`);
      assert.ok(containerPorts(svc).includes(port), `${name} publishes ${port}`);
    }
    for (const name of ["postgres", "jaeger", "prometheus", "grafana"]) {
      assert.ok(services[name].healthcheck?.test, `${name} has a health check`);
    }
  });

  test("compose waits only on services that exist, healthy where they have a check", () => {
    for (const [name, svc] of Object.entries(services)) {
      for (const [dep, { condition }] of Object.entries<Json>(svc.depends_on ?? {})) {
        assert.ok(services[dep], `${name} depends on unknown ${dep}`);
        assert.ok(!services[dep].profiles, `${name} depends on ${dep}, which is behind a profile`);
        if (condition === "service_healthy") {
          assert.ok(services[dep].healthcheck, `${name} waits for ${dep} healthy, no check`);
        }
      }
    }
    // No cycles: every service can be started after its dependencies.
    const started = new Set<string>();
    while (started.size < Object.keys(services).length) {
      const next = Object.keys(services).find(
        (n) =>
          !started.has(n) && Object.keys(services[n].depends_on ?? {}).every((d) => started.has(d)),
      );
      assert.ok(
        next,
        `dependency cycle among ${Object.keys(services).filter((n) => !started.has(n))}`,
      );
      started.add(next);
    }
  });

  test("compose points the backend at a healthy Postgres with matching credentials", () => {
    const pg = services.postgres.environment;
    for (const [name, svc] of Object.entries(services)) {
      const url = svc.environment?.DATABASE_URL;
      if (!url) continue;
      const db = new URL(url);
      assert.equal(db.hostname, "postgres");
      assert.equal(db.port || "5432", "5432");
      assert.equal(db.username, pg.POSTGRES_USER);
      assert.equal(db.password, pg.POSTGRES_PASSWORD);
      assert.equal(db.pathname, `/${pg.POSTGRES_DB}`);
      assert.equal(svc.depends_on.postgres.condition, "service_healthy", name);
    }
    assert.ok(services.backend.environment.DATABASE_URL);
  });

  test("compose wires engine → backend alerts and simulator → engine frames by service name", () => {
    const backendPort = Number(services.backend.environment.PORT);
    for (const name of ["engine", "engine-gpu"]) {
      const url = services[name].environment.NESTJS_URL;
      assert.equal(hostOf(url), "backend");
      assert.equal(portOf(url), backendPort);
    }
    const engineUrl = /\$\{ENGINE_URL:-(.+)\}/.exec(services.backend.environment.ENGINE_URL)![1];
    assert.equal(hostOf(engineUrl), "engine");
    assert.equal(portOf(engineUrl), Number(services.engine.environment.APP_PORT));
    assert.deepEqual(services["engine-gpu"].profiles, ["gpu"]);
    const gpu = services["engine-gpu"].deploy.resources.reservations.devices[0];
    assert.equal(gpu.driver, "nvidia");
    assert.deepEqual(gpu.capabilities, ["gpu"]);
  });

  test("compose publishes no host port twice", () => {
    const seen = new Map<string, string>();
    for (const [name, svc] of Object.entries(services)) {
      for (const p of svc.ports ?? []) {
        const host = String(p).split(":")[0];
        assert.ok(!seen.has(host), `host port ${host}: ${seen.get(host)} and ${name}`);
        seen.set(host, name);
      }
    }
  });

  test("compose mounts config files that exist", () => {
    for (const [name, svc] of Object.entries(services)) {
      for (const volume of svc.volumes ?? []) {
        if (!volume.startsWith("./")) continue;
        const path = volume.split(":")[0];
        assert.ok(existsSync(new URL(path, root)), `${name} mounts missing ${path}`);
      }
    }
    const collectorConfig = mountOf(services["otel-collector"], "otel-collector.yaml");
    assert.ok(services["otel-collector"].command.join(" ").includes(collectorConfig));
    const jaegerConfig = mountOf(services.jaeger, "telemetry/compose/jaeger.yaml");
    assert.ok(services.jaeger.command.includes(jaegerConfig));
    const promConfig = mountOf(services.prometheus, "telemetry/compose/prometheus.yaml");
    assert.ok(services.prometheus.command.includes(`--config.file=${promConfig}`));
    const dashboardsDir = mountOf(services.grafana, "telemetry/compose/grafana/dashboards");
    assert.equal(dashboards.providers[0].options.path, dashboardsDir);
  });
});
