// Whether the process a lock file names still runs: its pid and, where Linux says, when it started.
import { readFileSync } from "node:fs";

/**
 * When process `pid` started, from Linux's `/proc` (clock ticks since boot), or undefined where
 * there is none. With it a lock names one process, not a pid that a restarted container (a new
 * pid namespace) may have given to another.
 */
export function processStartedAt(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

/** Whether the process a lock names (`pid`, and when it started, when known) is running. */
export function processRunning(pid: number, started: string | undefined): boolean {
  if (started) return processStartedAt(pid) === started;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // Another user's process counts as running.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
