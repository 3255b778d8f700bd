// SIGSTOP that has taken effect: the only way tests freeze a process.
import type { ChildProcess } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { waitFor } from "./wait_for.ts";

/**
 * Sends SIGSTOP and resolves once every thread of the process is stopped. Linux stops a process
 * only when one of its threads next runs: on a busy host the others go on meanwhile, and a "frozen"
 * nats-server was seen acknowledging a publish sent after the signal (6 times in 40 under load).
 */
export async function freeze(child: ChildProcess): Promise<void> {
  const pid = child.pid;
  if (pid === undefined || !child.kill("SIGSTOP")) throw new Error("no process to freeze");
  // A thread that ended meanwhile has no stat file: it runs nothing either.
  const state = (task: string) =>
    readFile(`/proc/${pid}/task/${task}/stat`, "utf8").then(
      // The state follows the command name in parentheses, which may itself hold spaces.
      (stat) => stat.slice(stat.lastIndexOf(") ") + 2)[0],
      () => "T",
    );
  await waitFor(
    async () => {
      const states = await Promise.all((await readdir(`/proc/${pid}/task`)).map(state));
      return states.every((s) => s === "T" || s === "t");
    },
    `process ${pid} to stop`,
    10_000,
    1,
  );
}
