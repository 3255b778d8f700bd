// Test helper: runs a service as a child process, reads its JSON log lines, stops it and waits for exit.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { NODE_SERVICE_ARGS } from "../../launch.ts";

export interface ServiceProcess {
  child: ChildProcess;
  /** Every stdout/stderr line so far. */
  lines: string[];
  /** Resolves with the first JSON log line (past or future) matching, or rejects at the deadline. */
  waitForLog(
    match: (line: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  /** Sends `signal` and resolves with the exit code (SIGKILL after `graceMs`). */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<number | null>;
}

const ROOT = new URL("../../", import.meta.url);

/** Node as `npm run backend` / `npm run engine` run it (launch.ts). */
export const NODE_TS = [process.execPath, ...NODE_SERVICE_ARGS];
/** Deno from node_modules, as `deno task backend` runs it. */
export const DENO_TS = [new URL("node_modules/.bin/deno", ROOT).pathname, "run", "-A"];

/**
 * Starts `command` in the repository root with `env` added to the environment. Nothing it runs
 * writes into the working tree: without a `DATA_DIR` in `env` (the engine's, also when start.ts
 * starts it) it gets a fresh temporary one, removed when it exits, and embedded PGlite stays in
 * memory unless `env` names a `PGLITE_DATA_DIR`.
 */
export function spawnService(command: string[], env: Record<string, string>): ServiceProcess {
  const ownDataDir =
    env.DATA_DIR === undefined ? mkdtempSync(join(tmpdir(), "service-data-")) : undefined;
  const child = spawn(command[0], command.slice(1), {
    cwd: ROOT,
    env: {
      ...process.env,
      NO_COLOR: "1",
      PGLITE_DATA_DIR: "",
      ...(ownDataDir === undefined ? {} : { DATA_DIR: ownDataDir }),
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  if (ownDataDir !== undefined) {
    child.once("exit", () => rmSync(ownDataDir, { recursive: true, force: true }));
  }
  const lines: string[] = [];
  const listeners = new Set<() => void>();
  for (const stream of [child.stdout!, child.stderr!]) {
    createInterface({ input: stream }).on("line", (line) => {
      lines.push(line);
      if (process.env.TEST_SERVICE_LOGS) console.error(line);
      for (const l of listeners) l();
    });
  }
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => resolve(code)),
  );

  function waitForLog(match: (line: Record<string, unknown>) => boolean, timeoutMs = 60_000) {
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      const deadline = AbortSignal.timeout(timeoutMs);
      const check = () => {
        for (const line of lines) {
          if (!line.startsWith("{")) continue;
          try {
            const json = JSON.parse(line);
            if (match(json)) return finish(() => resolve(json));
          } catch {
            // Not a JSON line.
          }
        }
      };
      const finish = (settle: () => void) => {
        listeners.delete(check);
        deadline.removeEventListener("abort", onTimeout);
        settle();
      };
      const onTimeout = () =>
        finish(() =>
          reject(
            new Error(`no matching log line in ${timeoutMs} ms:\n${lines.slice(-30).join("\n")}`),
          ),
        );
      deadline.addEventListener("abort", onTimeout, { once: true });
      exited.then((code) => {
        if (listeners.has(check))
          finish(() => reject(new Error(`exited ${code}:\n${lines.slice(-30).join("\n")}`)));
      });
      listeners.add(check);
      check();
    });
  }

  async function stop(signal: NodeJS.Signals = "SIGTERM", graceMs = 15_000) {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    child.kill(signal);
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    const code = await exited;
    clearTimeout(timer);
    return code;
  }

  return { child, lines, waitForLog, stop };
}

/** Polls `probe` until it returns a value other than undefined, or rejects at the deadline. */
export async function waitFor<T>(
  probe: () => Promise<T | undefined>,
  what: string,
  timeoutMs = 60_000,
  intervalMs = 200,
): Promise<T> {
  const deadline = AbortSignal.timeout(timeoutMs);
  while (!deadline.aborted) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
