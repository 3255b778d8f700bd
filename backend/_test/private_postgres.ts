// Test helper: a private PostgreSQL server (initdb + pg_ctl on a temp dir and free port) that tests may stop and start.
import { execFile } from "node:child_process";
import { chown, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort } from "./free_port.ts";

const run = promisify(execFile);
const PG_ROOT = "/usr/lib/postgresql";

export interface PrivatePostgres {
  url: string;
  start(): Promise<void>;
  /** `fast` shutdown: connections are terminated (57P01), as in a real restart. */
  stop(): Promise<void>;
  dispose(): Promise<void>;
}

async function binDir(): Promise<string> {
  const versions = (await readdir(PG_ROOT).catch(() => [])).filter((v) => /^\d+$/.test(v));
  if (versions.length === 0) {
    throw new Error(
      `no PostgreSQL server binaries under ${PG_ROOT}/<version>/bin (install postgresql)`,
    );
  }
  return join(PG_ROOT, versions.sort((a, b) => Number(b) - Number(a))[0], "bin");
}

/**
 * Creates and starts a throwaway cluster with trust authentication. PostgreSQL refuses to run as
 * root, so as root the commands run as the `postgres` user via runuser.
 */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bin = await binDir();
  const dir = await mkdtemp(join(tmpdir(), "pg-private-"));
  const data = join(dir, "data");
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const { stdout } = await run("id", ["-u", "postgres"]);
    const { stdout: gid } = await run("id", ["-g", "postgres"]);
    await chown(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  const pg = (tool: string, args: string[]) =>
    asRoot
      ? run("runuser", ["-u", "postgres", "--", join(bin, tool), ...args])
      : run(join(bin, tool), args);
  await pg("initdb", ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync"]);
  const port = await freePort();
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`;
  const start = async () => {
    await pg("pg_ctl", [
      "-D",
      data,
      "-o",
      options,
      "-l",
      join(dir, "log"),
      "-w",
      "-t",
      "60",
      "start",
    ]);
  };
  const stop = async () => {
    await pg("pg_ctl", ["-D", data, "-m", "fast", "-w", "-t", "60", "stop"]);
  };
  await start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    start,
    stop,
    async dispose() {
      await stop().catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
}
