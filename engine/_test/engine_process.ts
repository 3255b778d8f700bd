// Runs the real engine entry point as a child process (Node or Deno) for boot and signal tests.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NODE_SERVICE_ARGS } from "../../launch.ts";
import { waitFor } from "./wait_for.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

export interface EngineProcess {
  child: ChildProcess;
  /** stdout + stderr so far. */
  output(): string;
  /** JSON log lines so far. */
  // biome-ignore lint/suspicious/noExplicitAny: log lines as the tests read them
  logs(): Record<string, any>[];
  /** Resolves with the bound port once the engine logs that it listens. */
  port(): Promise<number>;
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>;
  /** Kills the process if it still runs and waits for it. */
  kill(signal?: NodeJS.Signals): Promise<number | string>;
}

/**
 * Spawns `engine/main.ts` under `runtime` with `env` added to the current environment. Without a
 * `DATA_DIR` in `env` the engine gets a fresh temporary one, removed when it exits: a test never
 * writes to the default `.data/engine`, where `npm start` would find its outbox and incidents.
 */
export function spawnEngine(runtime: "node" | "deno", env: Record<string, string>): EngineProcess {
  const [command, args] =
    runtime === "node"
      ? [process.execPath, [...NODE_SERVICE_ARGS, "engine/main.ts"]]
      : [`${ROOT}node_modules/.bin/deno`, ["run", "-A", "engine/main.ts"]];
  const ownDataDir =
    env.DATA_DIR === undefined ? mkdtempSync(join(tmpdir(), "engine-process-")) : undefined;
  const child = spawn(command, args, {
    cwd: ROOT,
    env: {
      ...process.env,
      APP_HOST: "127.0.0.1",
      APP_PORT: "0",
      LOG_LEVEL: "info",
      ...(ownDataDir === undefined ? {} : { DATA_DIR: ownDataDir }),
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  if (ownDataDir !== undefined) {
    child.once("exit", () => rmSync(ownDataDir, { recursive: true, force: true }));
  }
  let text = "";
  child.stdout!.on("data", (chunk) => {
    text += chunk;
  });
  child.stderr!.on("data", (chunk) => {
    text += chunk;
  });
  // 'close', not 'exit': it comes once the output pipes have ended too (only the engine holds
  // them: its retraining child has pipes of its own), so logs read after a stop are whole.
  const exited = new Promise<number | string>((resolve) => {
    child.once("close", (code, signal) => resolve(code ?? signal ?? -1));
  });
  const logs = () =>
    text
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .flatMap((l) => {
        try {
          return [JSON.parse(l)];
        } catch {
          return [];
        }
      });
  return {
    child,
    output: () => text,
    logs,
    exited,
    port: () =>
      waitFor(
        () => {
          if (child.exitCode !== null) throw new Error(`engine exited ${child.exitCode}:\n${text}`);
          return logs().find((l) => l.msg === "engine listening")?.port as number | undefined;
        },
        "the engine to listen",
        60_000,
      ),
    async kill(signal = "SIGKILL") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Waits until `GET /health/ready` on `port` answers 200. */
export async function waitReady(port: number, timeoutMs = 60_000): Promise<void> {
  await waitFor(
    async () => {
      try {
        return (await fetch(`http://127.0.0.1:${port}/health/ready`)).status === 200;
      } catch {
        return false;
      }
    },
    `engine on port ${port} to be ready`,
    timeoutMs,
    50,
  );
}

/**
 * Posts one frame body to the engine on `port` until it is taken (202), waiting out back-pressure
 * (429) 20 ms at a time, as a producer honouring it does; any other answer fails, naming `what`.
 */
export async function postFrameUntilTaken(port: number, body: string, what: string): Promise<void> {
  for (;;) {
    const res = await fetch(`http://127.0.0.1:${port}/data-enqueue`, { method: "POST", body });
    await res.arrayBuffer();
    if (res.status === 202) return;
    assert.equal(res.status, 429, what);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
