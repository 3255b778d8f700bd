// Starts the engine as a separate process for the benchmark, and samples its resident memory.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, open, readFile, rm } from "node:fs/promises";
import * as http from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { NODE_SERVICE_ARGS, nodeServiceEnv } from "../../launch.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

export interface EngineProcess {
  port: number;
  pid: number;
  /** Resident set size in bytes, from /proc (Linux), or undefined elsewhere. */
  rss(): Promise<number | undefined>;
  stop(): Promise<void>;
}

/** A port that was free a moment ago: port 0 cannot be handed across processes. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** An alert receiver answering 201, so the engine's alert delivery has somewhere to go. */
async function startSink(): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((request, response) => {
    request.resume();
    request.on("end", () =>
      response.writeHead(201, { "content-type": "application/json" }).end('{"status":"ok"}'),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as { port: number }).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Spawns the engine as every launcher does (`launch.ts`) on a free port with `env` on top of quiet defaults,
 * and resolves once `/health/ready` answers 200 (or rejects after `readyTimeoutMs`). With
 * `logFile`, the engine's log lines (its stdout) are appended to that file instead of ours: a
 * file never makes the engine wait on a reader, as a pipe to this busy process could.
 */
export async function startEngineProcess(
  env: Record<string, string>,
  readyTimeoutMs = 120_000,
  logFile?: string,
): Promise<EngineProcess> {
  const port = await freePort();
  const sink = await startSink();
  const dataDir = await mkdtemp(join(tmpdir(), "engine-bench-"));
  const log = logFile ? await open(logFile, "a") : undefined;
  const child: ChildProcess = spawn(process.execPath, [...NODE_SERVICE_ARGS, "engine/main.ts"], {
    cwd: ROOT,
    env: {
      ...process.env,
      ...nodeServiceEnv(process.env),
      APP_HOST: "127.0.0.1",
      APP_PORT: String(port),
      NESTJS_URL: `http://127.0.0.1:${sink.port}`,
      DATA_DIR: dataDir,
      LOG_LEVEL: "warn",
      ...env,
    },
    stdio: ["ignore", log ? log.fd : "inherit", "inherit"],
  });
  // The child holds its own copy of the descriptor.
  await log?.close();
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => resolve(code)),
  );
  async function stop(): Promise<void> {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await exited;
    await sink.close();
    await rm(dataDir, { recursive: true, force: true });
  }
  const deadline = AbortSignal.timeout(readyTimeoutMs);
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`engine exited with code ${child.exitCode} before it was ready`);
    }
    const ready = await fetch(`http://127.0.0.1:${port}/health/ready`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ready) break;
    if (deadline.aborted) {
      await stop();
      throw new Error(`engine not ready after ${readyTimeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    port,
    pid: child.pid!,
    async rss() {
      const status = await readFile(`/proc/${child.pid}/status`, "utf8").catch(() => "");
      const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
      return kb ? Number(kb) * 1024 : undefined;
    },
    stop,
  };
}
