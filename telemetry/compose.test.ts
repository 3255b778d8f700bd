// Static wiring checks of compose.yaml, otel-collector.yaml and the dashboard configs they mount.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { freePort } from "../backend/_test/free_port.ts";
import { authConfigProblem } from "../contracts/auth.ts";
import { backendConfigSchema, engineConfigSchema, parseConfig } from "../contracts/config.ts";
import { waitFor } from "../engine/_test/wait_for.ts";
import { DEMO_ENGINE_ENV, NODE_SERVICE_ARGS } from "../launch.ts";
import {
  containerPorts,
  dashboards,
  dockerfile,
  hostOf,
  type Json,
  mountOf,
  portOf,
  read,
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
    // CUDA libraries are fetched only in the dependency stage of the gpu target: package.json
    // denies onnxruntime-node's own install script, and its postinstall runs the installer only
    // when ONNXRUNTIME_NODE_INSTALL is set.
    const pkg = JSON.parse(read("package.json"));
    assert.equal(pkg.allowScripts["onnxruntime-node"], false);
    assert.match(
      pkg.scripts.postinstall,
      /process\.env\.ONNXRUNTIME_NODE_INSTALL\).*onnxruntime-node/,
    );
    assert.match(stages.get("deps-gpu")!, /ONNXRUNTIME_NODE_INSTALL=cuda12[\s\S]*npm ci/);
    // The npm 10 of the Node 20 image ignores allowScripts: the CPU stage tells the script to skip.
    assert.match(stages.get("deps-cpu")!, /^ENV ONNXRUNTIME_NODE_INSTALL=skip$/m);
    // The GPU engine reads token files the CPU image's node user (1000) wrote with mode 0600.
    assert.match(stages.get("gpu")!, /^USER 1000:1000$/m);
    assert.match(stages.get("cpu")!, /^USER node$/m);
    assert.match(stages.get("gpu")!, /COPY --from=deps-gpu \S* ?\/app\/node_modules/);
    assert.match(stages.get("cpu")!, /COPY --from=deps-cpu \S* ?\/app\/node_modules/);
  });

  test("compose gives the engines and the backend longer than their drain to stop", () => {
    const seconds = (d: string) => Number(/^(\d+)s$/.exec(d)?.[1] ?? Number.NaN);
    for (const name of ["engine", "engine-gpu", "engine-ingest", "engine-worker", "backend"]) {
      const svc = services[name];
      const drainS = Number(svc.environment?.SHUTDOWN_TIMEOUT_MS ?? 10_000) / 1000;
      // The drain, the engine's 2 s watchdog and telemetry's last flush of up to 2 s.
      assert.ok(
        seconds(svc.stop_grace_period ?? "10s") >= drainS + 4,
        `${name}: stop_grace_period ${svc.stop_grace_period} for a ${drainS} s drain`,
      );
    }
  });

  test("compose runs the engine and the backend as their npm scripts do", () => {
    for (const name of ["engine", "backend", "engine-ingest", "engine-worker"]) {
      const entry = services[name].command.join(" ");
      const script = name.startsWith("engine") ? "engine" : name;
      // The image's ENTRYPOINT is `node ...NODE_SERVICE_ARGS` (launch.test.ts checks it); the
      // npm script execs the same command.
      assert.equal(
        scripts[script],
        ["exec node", ...NODE_SERVICE_ARGS, entry].join(" "),
        `${name} command vs npm run ${name}`,
      );
      assert.ok(existsSync(new URL(entry, root)), `${entry} exists`);
    }
  });

  test("compose health-checks the services on /health/ready at their configured ports", () => {
    const portVar = {
      engine: "APP_PORT",
      "engine-gpu": "APP_PORT",
      "engine-ingest": "APP_PORT",
      backend: "PORT",
    } as const;
    for (const [name, variable] of Object.entries(portVar)) {
      const svc = services[name];
      const port = Number(svc.environment[variable]);
      const probe = svc.healthcheck.test.join(" ");
      assert.ok(probe.includes(`:${port}/health/ready`), `${name} probes ${probe}`);
      assert.ok(containerPorts(svc).includes(port), `${name} publishes ${port}`);
    }
    const worker = services["engine-worker"];
    const workerProbe = worker.healthcheck.test.join(" ");
    assert.ok(workerProbe.includes(`:${worker.environment.APP_PORT}/health/ready`), workerProbe);
    for (const name of ["postgres", "jaeger", "prometheus", "grafana", "nats"]) {
      assert.ok(services[name].healthcheck?.test, `${name} has a health check`);
    }
  });

  test("compose waits only on services that exist, healthy where they have a check", () => {
    for (const [name, svc] of Object.entries(services)) {
      for (const [dep, { condition }] of Object.entries<Json>(svc.depends_on ?? {})) {
        assert.ok(services[dep], `${name} depends on unknown ${dep}`);
        // A profiled dependency is fine only for services started by that same profile.
        for (const profile of services[dep].profiles ?? []) {
          assert.ok(
            (svc.profiles ?? []).includes(profile),
            `${name} depends on ${dep}, which is behind profile ${profile}`,
          );
        }
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

  test("compose's single engines serve from a registry in their own volume, seeded from the image", () => {
    for (const name of ["engine", "engine-gpu"]) {
      const env = services[name].environment;
      assert.equal(env.MODEL_SEED_DIR, "/app/models", name);
      assert.ok(env.MODEL_DIR.startsWith(`${env.DATA_DIR}/`), `${name}: ${env.MODEL_DIR}`);
      const config = parseConfig(engineConfigSchema, env);
      assert.equal(config.MODEL_SEED_DIR, "/app/models");
    }
  });

  test("compose's scoring engines run the simulated plant with npm start's demo settings", () => {
    // Without them every anomaly of the demo merges into one incident that never resolves.
    for (const name of ["engine", "engine-gpu", "engine-worker", "engine-worker-2"]) {
      const config = parseConfig(engineConfigSchema, services[name].environment);
      for (const [variable, value] of Object.entries(DEMO_ENGINE_ENV)) {
        assert.equal(String(config[variable as keyof typeof config]), value, `${name} ${variable}`);
      }
    }
  });

  test("compose passes the host's OIDC settings to the backend, so AUTH_MODE=oidc can start", () => {
    // What `docker compose up` makes of `${NAME:-default}` with these set on the host.
    const host: Record<string, string> = {
      AUTH_MODE: "oidc",
      OIDC_ISSUER: "https://id.example.com",
      OIDC_CLIENT_ID: "console",
      OIDC_CLIENT_SECRET: "s3cret",
      PUBLIC_URL: "https://console.example.com",
    };
    const resolve = (env: Record<string, string>, from: Record<string, string>) =>
      Object.fromEntries(
        Object.entries(env).map(([k, v]) => [
          k,
          String(v).replace(/\$\{(\w+):-([^}]*)\}/g, (_, name, fallback) => from[name] || fallback),
        ]),
      );
    const env = services.backend.environment;
    const oidc = parseConfig(backendConfigSchema, resolve(env, host));
    assert.equal(oidc.AUTH_MODE, "oidc");
    assert.equal(authConfigProblem(oidc), undefined);
    assert.equal(oidc.OIDC_CLIENT_SECRET, "s3cret");
    // Unset on the host: token mode, and the blank OIDC values read as unset.
    const plain = parseConfig(backendConfigSchema, resolve(env, {}));
    assert.equal(plain.AUTH_MODE, "token");
    assert.equal(authConfigProblem(plain), undefined);
  });

  test("compose passes every sign-in setting the backend reads, each with the backend's default", () => {
    const env = services.backend.environment;
    const signIn = Object.keys(backendConfigSchema.entries).filter((k) =>
      /^(AUTH_MODE|OIDC_\w+|SESSION_\w+|PUBLIC_URL)$/.test(k),
    );
    assert.ok(signIn.includes("OIDC_ROLE_MAP") && signIn.includes("SESSION_MAX_AGE_H"));
    const defaults = parseConfig(backendConfigSchema, {});
    for (const name of signIn) {
      const value = env[name] ?? env[`${name}_FILE`];
      assert.ok(value !== undefined, `backend: ${name} is not passed through`);
      // Taken from the host, else blank (unset) or the backend's own default.
      const [, from, fallback] = /^\$\{(\w+):-([^}]*)\}$/.exec(String(value)) ?? [];
      if (name === "AUTH_MODE") continue; // token by default here: listening beyond the machine
      assert.equal(from, name, `backend: ${name}: ${value}`);
      if (fallback === "") continue;
      const parsed = parseConfig(backendConfigSchema, { [name]: fallback });
      assert.deepEqual(
        parsed[name as keyof typeof parsed],
        defaults[name as keyof typeof defaults],
        name,
      );
    }
  });

  test("compose signs alerts and guards frame intake with secrets the tokens service writes", async () => {
    const written = await readFile(
      new URL("../backend/auth/first_tokens.ts", import.meta.url),
      "utf8",
    );
    for (const name of ["backend", "engine", "engine-gpu", "engine-ingest", "engine-worker"]) {
      const env = services[name].environment;
      for (const [variable, file] of [
        ["ALERT_SIGNING_SECRET_FILE", "alert_signing_secret"],
        ["INGEST_TOKEN_FILE", "ingest_token"],
      ]) {
        assert.equal(env[variable], `/app/.data/secrets/${file}`, `${name} ${variable}`);
        assert.ok(written.includes(`"${file}"`), `the tokens service writes ${file}`);
      }
    }
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

  test("every engine and the backend share the engine's ADMIN_TOKEN from the tokens service's volume", () => {
    const secret = "/app/.data/secrets/engine_admin_token";
    for (const name of ["engine", "engine-gpu", "engine-ingest", "engine-worker", "backend"]) {
      const svc = services[name];
      assert.equal(svc.environment.ADMIN_TOKEN_FILE, secret, name);
      assert.equal(svc.environment.ADMIN_TOKEN, undefined, `${name}: one of the two`);
      const mounts = (svc.volumes ?? []) as string[];
      assert.ok(
        mounts.some((m) => m.startsWith("secrets:/app/.data/secrets")),
        `${name} mounts the secrets volume`,
      );
      assert.equal(svc.depends_on?.tokens?.condition, "service_completed_successfully", name);
    }
    assert.match(read("backend/auth/first_tokens.ts"), /engine_admin_token/);
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

  test("docker compose up alone is the single-process engine; scale-out is a profile", () => {
    const byDefault = Object.keys(services).filter((n) => !services[n].profiles);
    assert.ok(byDefault.includes("engine"));
    for (const name of ["nats", "engine-ingest", "engine-worker", "engine-worker-2"]) {
      assert.ok(!byDefault.includes(name), `${name} starts without a profile`);
      assert.deepEqual(services[name].profiles, ["scale-out"], name);
    }
    const single = parseConfig(engineConfigSchema, services.engine.environment);
    assert.equal(single.ENGINE_ROLE, "all");
    assert.equal(single.FRAME_BUS, "memory");
  });

  test("compose scale-out: replicas of ingest and workers on one stream of the nats service", () => {
    const nats = services.nats;
    assert.ok(nats.command.includes("-js"), "JetStream enabled");
    const store = nats.command[nats.command.indexOf("-sd") + 1];
    assert.ok(
      nats.volumes.some((v: string) => !v.startsWith("./") && v.split(":")[1] === store),
      `the JetStream store ${store} is on a named volume`,
    );
    const ingest = parseConfig(engineConfigSchema, services["engine-ingest"].environment);
    const worker = parseConfig(engineConfigSchema, services["engine-worker"].environment);
    assert.equal(ingest.ENGINE_ROLE, "ingest");
    assert.equal(worker.ENGINE_ROLE, "worker");
    for (const c of [ingest, worker]) {
      assert.equal(c.FRAME_BUS, "nats");
      assert.equal(new URL(c.NATS_URL).hostname, "nats");
      assert.equal(portOf(c.NATS_URL), 4222);
      assert.equal(hostOf(c.NESTJS_URL), "backend");
    }
    assert.equal(ingest.NATS_STREAM, worker.NATS_STREAM);
    assert.equal(ingest.NATS_PARTITIONS, worker.NATS_PARTITIONS);
    assert.ok(services["engine-ingest"].deploy.replicas >= 2, "engine-ingest has replicas");
    // Workers by fixed ids, not replicas: a recreated container must find its own outbox folder.
    const workers = ["engine-worker", "engine-worker-2"];
    const ids = workers.map((name) => {
      const c = parseConfig(engineConfigSchema, services[name].environment);
      assert.equal(c.ENGINE_ROLE, "worker", name);
      assert.equal(c.NATS_STREAM, ingest.NATS_STREAM, name);
      assert.equal(services[name].deploy?.replicas, undefined, `${name} is one container`);
      assert.deepEqual(services[name].volumes, services["engine-worker"].volumes, name);
      assert.equal(services[name].hostname, c.NATS_WORKER_ID, `${name}'s outbox folder is fixed`);
      return c.NATS_WORKER_ID;
    });
    assert.deepEqual(ids, ["engine-worker-1", "engine-worker-2"]);
    for (const name of ["engine-ingest", ...workers]) {
      assert.equal(services[name].depends_on.nats.condition, "service_healthy");
    }
    // Replicas cannot share one host port: ingest publishes a range, one port per replica.
    const [range] = services["engine-ingest"].ports[0].split(":");
    const [from, to] = range.split("-").map(Number);
    assert.equal(to - from + 1, services["engine-ingest"].deploy.replicas);
  });

  test("the nats service's command runs on the local nats-server and reports JetStream healthy", async () => {
    const args: string[] = [...services.nats.command];
    const dir = await mkdtemp(join(tmpdir(), "compose-nats-"));
    const [port, monitor] = [await freePort(), await freePort()];
    args[args.indexOf("-sd") + 1] = dir;
    args[args.indexOf("-m") + 1] = String(monitor);
    const child = spawn(
      process.env.NATS_SERVER_BIN ?? "/usr/sbin/nats-server",
      [...args, "-a", "127.0.0.1", "-p", String(port)],
      { stdio: "ignore" },
    );
    try {
      const healthz = (services.nats.healthcheck.test.join(" ") as string).match(
        /http:\/\/127\.0\.0\.1:8222(\/[^' ]+)/,
      )![1];
      await waitFor(
        () =>
          fetch(`http://127.0.0.1:${monitor}${healthz}`).then(
            (r) => r.status === 200,
            () => false,
          ),
        "the compose nats command to report JetStream healthy",
        15_000,
        50,
      );
    } finally {
      child.kill("SIGKILL");
      await rm(dir, { recursive: true, force: true });
    }
  });
});
