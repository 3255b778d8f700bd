// Runs a real service entry point as a child process for tests, and reads its JSON log lines.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { NODE_SERVICE_ARGS } from "../launch.ts";
import { waitFor } from "./_otlp_receiver.ts";

export interface ServiceProcess {
  /** Every JSON log line so far, parsed. */
  readonly lines: Record<string, unknown>[];
  /** Raw output, for failure messages. */
  output(): string;
  /** The port from the service's "listening" log line. */
  port: number;
  /** SIGTERM, then SIGKILL if it has not exited within the deadline. */
  stop(): Promise<void>;
}

/**
 * Spawns `node run_ts.mjs <entry>` (launch.ts) with `env` and resolves once it logs a line carrying a
 * numeric `port` (its listening line), or rejects with its output if it exits or times out first.
 */
export async function startService(
  entry: string,
  env: Record<string, string>,
  timeoutMs = 60_000,
): Promise<ServiceProcess> {
  const child: ChildProcess = spawn(process.execPath, [...NODE_SERVICE_ARGS, entry], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: Record<string, unknown>[] = [];
  let raw = "";
  let pending = "";
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    raw += chunk;
    pending += chunk;
    const parts = pending.split("\n");
    pending = parts.pop()!;
    for (const line of parts) {
      try {
        lines.push(JSON.parse(line));
      } catch {
        // Not every line a library prints is ours; the raw output keeps it.
      }
    }
  });
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
    raw += chunk;
  });
  let exited = false;
  child.once("exit", () => {
    exited = true;
  });

  async function stop() {
    if (exited) return;
    const gone = once(child, "exit");
    child.kill("SIGTERM");
    const deadline = AbortSignal.timeout(10_000);
    const forced = new Promise<void>((resolve) =>
      deadline.addEventListener("abort", () => resolve(), { once: true }),
    );
    await Promise.race([gone, forced]);
    if (!exited) {
      child.kill("SIGKILL");
      await gone;
    }
  }

  try {
    const listening = await waitFor(
      `${entry} to log its port`,
      () => {
        if (exited) throw new Error(`${entry} exited early:\n${raw}`);
        return lines.find((l) => typeof l.port === "number" && (l.port as number) > 0);
      },
      timeoutMs,
    );
    return { lines, output: () => raw, port: listening.port as number, stop };
  } catch (error) {
    await stop();
    throw new Error(`${(error as Error).message}\n--- output ---\n${raw}`);
  }
}
