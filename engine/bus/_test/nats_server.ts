// A private nats-server with JetStream on a free port, for fault tests that stop or kill it.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../../../backend/_test/free_port.ts";
import { freeze } from "../../_test/freeze.ts";
import { waitFor } from "../../_test/wait_for.ts";

export interface NatsServer {
  url: string;
  port: number;
  /** (Re)starts the server on the same port and store directory. */
  start(): Promise<void>;
  /** Stops it: SIGTERM (clean) or SIGKILL; SIGSTOP (resolving once it took effect) and SIGCONT freeze and resume it. */
  signal(signal: NodeJS.Signals): Promise<void>;
  /** Stops it and removes its store. */
  remove(): Promise<void>;
}

const BINARY = process.env.NATS_SERVER_BIN ?? "/usr/sbin/nats-server";

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/**
 * Starts `nats-server -js` on 127.0.0.1 and a free port, with a temporary store; `args` go
 * after those (a configuration file: `-c <file>`).
 */
export async function startNatsServer(args: string[] = []): Promise<NatsServer> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), "nats-store-"));
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const server: NatsServer = {
    url: `nats://127.0.0.1:${port}`,
    port,
    async start() {
      const proc = spawn(
        BINARY,
        ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", dir, ...args],
        {
          stdio: ["ignore", "ignore", "pipe"],
        },
      );
      let stderr = "";
      proc.stderr!.on("data", (chunk) => {
        stderr += chunk;
      });
      child = proc;
      exited = new Promise((resolve) => proc.once("exit", () => resolve()));
      await waitFor(
        async () => {
          if (proc.exitCode !== null) throw new Error(`nats-server exited: ${stderr}`);
          return accepts(port);
        },
        `nats-server on port ${port}`,
        15_000,
        20,
      );
    },
    async signal(signal) {
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      if (signal === "SIGSTOP") return freeze(child);
      child.kill(signal);
      if (signal === "SIGTERM" || signal === "SIGKILL") await exited;
    },
    async remove() {
      if (child && child.exitCode === null && child.signalCode === null) {
        child.kill("SIGCONT");
        child.kill("SIGKILL");
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}
