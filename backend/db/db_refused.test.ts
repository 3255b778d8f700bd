// A PostgreSQL server that refuses the connection (the database renamed away, the role no longer allowed to log in): start-up fails at once, and a running backend answers 503 until it is put right.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import postgres from "postgres";
import { startBackend } from "../_test/backend_process.ts";
import { runUntilExit } from "../_test/run_until_exit.ts";
import { type ServiceProcess, waitFor } from "../_test/spawn_service.ts";
import { originalAlert, post } from "../alerts/_fixtures.ts";
import { isRefused, isUnavailable, translateDbError } from "./db_errors.ts";

const url = process.env.DATABASE_URL;
const suffix = `${process.pid}_${Date.now().toString(36)}`;

let admin: postgres.Sql;
before(() => {
  if (url) admin = postgres(url, { max: 1, onnotice: () => {} });
});
after(async () => {
  await admin?.end();
});

/** `url` with `database` and `user` in it. */
function urlFor(database: string, user = "postgres"): string {
  const own = new URL(url as string);
  own.pathname = `/${database}`;
  own.username = user;
  own.password = "";
  return own.toString();
}

/** The status, error code and Retry-After of `count` alerts sent one after another. */
async function sendAlerts(base: string, count: number) {
  const answers: string[] = [];
  for (let i = 0; i < count; i++) {
    const res = await fetch(`${base}/api/v1/alert`, post(originalAlert()));
    const body = (await res.json()) as { error?: string };
    answers.push(
      `${res.status} ${body.error ?? "-"} retry-after=${res.headers.get("retry-after")}`,
    );
  }
  return answers;
}

/** The backend's JSON log lines at `level` whose message is `msg`. */
function logged(service: ServiceProcess, level: string, msg: string) {
  return service.lines.filter((line) => {
    try {
      const json = JSON.parse(line);
      return json.level === level && json.msg === msg;
    } catch {
      return false;
    }
  });
}

test("refusals are told apart from an unreachable server, and both answer 503", () => {
  for (const code of ["28000", "28P01", "3D000"]) {
    assert.ok(isRefused({ code }), code);
    assert.ok(!isUnavailable({ code }), `${code} is not retried at start-up`);
    assert.throws(
      () => translateDbError({ code }),
      (e: { status?: number; code?: string }) =>
        e.status === 503 && e.code === "database_unavailable",
      code,
    );
  }
  // The database's own error stays with the 503, for the logs.
  const refusal = Object.assign(new Error('role "x" is not permitted to log in'), {
    code: "28000",
  });
  assert.throws(
    () => translateDbError(refusal),
    (e: { status?: number; cause?: unknown }) => e.status === 503 && e.cause === refusal,
  );
  for (const code of ["42P01", "23503", "CONNECTION_CLOSED", undefined]) {
    assert.ok(!isRefused({ code }), String(code));
  }
});

// The refusals need a real PostgreSQL server (roles, databases to rename): with DATABASE_URL.
const pgTest = url ? test : () => {};

pgTest(
  "start-up on a database that does not exist, or as a role that may not log in, fails at once with one line",
  {},
  async () => {
    const role = `refused_role_${suffix}`;
    await admin.unsafe(`CREATE ROLE ${role} NOLOGIN`);
    try {
      for (const databaseUrl of [
        urlFor(`no_such_database_${suffix}`),
        urlFor(new URL(url as string).pathname.slice(1), role),
      ]) {
        const exit = await runUntilExit("backend/main.ts", {
          DATABASE_URL: databaseUrl,
          HOST: "127.0.0.1",
          PORT: "0",
          SIMULATOR_RATE_HZ: "0",
        });
        assert.equal(exit.code, 1, exit.output);
        const failed = exit.output
          .split("\n")
          .filter((l) => l.includes('"msg":"database migration failed"'));
        assert.equal(failed.length, 1, exit.output);
        assert.doesNotMatch(exit.output, /retrying/, "a refusal is not waited out");
      }
    } finally {
      await admin.unsafe(`DROP ROLE IF EXISTS ${role}`);
    }
  },
);

pgTest(
  "a running backend whose database is renamed away, or whose role may no longer log in, answers 503 database_unavailable with Retry-After, and recovers",
  {
    timeout: 120_000,
  },
  async () => {
    const name = `db_refused_${suffix}`;
    const gone = `${name}_gone`;
    const role = `db_refused_role_${suffix}`;
    await admin.unsafe(`CREATE DATABASE ${name}`);
    await admin.unsafe(`CREATE ROLE ${role} LOGIN SUPERUSER`);
    let renamed = false;
    const backend = await startBackend({ DATABASE_URL: urlFor(name, role) });
    const terminate = () =>
      admin.unsafe(
        `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname IN ('${name}', '${gone}')`,
      );
    try {
      assert.deepEqual(await sendAlerts(backend.base, 1), ["201 - retry-after=null"]);

      // The database renamed away: each new connection is refused with 3D000.
      await admin.unsafe(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
      await terminate();
      await admin.unsafe(`ALTER DATABASE ${name} RENAME TO ${gone}`);
      renamed = true;
      await admin.unsafe(`ALTER DATABASE ${gone} ALLOW_CONNECTIONS true`);
      assert.deepEqual(
        await sendAlerts(backend.base, 3),
        Array(3).fill("503 database_unavailable retry-after=1"),
      );
      await admin.unsafe(`ALTER DATABASE ${gone} RENAME TO ${name}`);
      renamed = false;
      await waitFor(
        async () => ((await sendAlerts(backend.base, 1))[0].startsWith("201") ? true : undefined),
        "alerts stored again once the database is back",
      );

      // The role may no longer log in: each new connection is refused with 28000.
      await admin.unsafe(`ALTER ROLE ${role} NOLOGIN`);
      await terminate();
      assert.deepEqual(
        await sendAlerts(backend.base, 3),
        Array(3).fill("503 database_unavailable retry-after=1"),
      );
      await admin.unsafe(`ALTER ROLE ${role} LOGIN`);
      await waitFor(
        async () => ((await sendAlerts(backend.base, 1))[0].startsWith("201") ? true : undefined),
        "alerts stored again once the role may log in",
      );

      assert.deepEqual(logged(backend.service, "error", "unhandled error"), []);
      const warned = logged(backend.service, "warn", "the database is unavailable; retry later");
      assert.ok(warned.length >= 6, backend.service.lines.slice(-20).join("\n"));
      // Each warning names the refusal itself.
      const causes = warned.map((line) => String(JSON.parse(line).cause));
      assert.ok(
        causes.some((cause) => /database ".*" does not exist/.test(cause)),
        causes.join("\n"),
      );
      assert.ok(
        causes.some((cause) => /is not permitted to log in/.test(cause)),
        causes.join("\n"),
      );
    } finally {
      await backend.service.stop();
      if (renamed) await admin.unsafe(`ALTER DATABASE ${gone} RENAME TO ${name}`).catch(() => {});
      await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.unsafe(`DROP DATABASE IF EXISTS ${gone} WITH (FORCE)`);
      await admin.unsafe(`DROP ROLE IF EXISTS ${role}`);
    }
  },
);
