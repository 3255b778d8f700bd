// Ties a process to the one that started it: a launcher killed with SIGKILL cannot stop what it started, so they watch it.
import process from "node:process";
import { setInterval } from "node:timers";

/**
 * The variable launch.ts sets to the pid of the launcher (`npm start`, `deno task start`) for each
 * service it starts. Internal: not a setting, and not one of the services' configuration.
 */
export const LAUNCHER_PID = "LAUNCHER_PID";

/**
 * Calls `gone(parent)` once, within `everyMs`, when this process's parent is no longer `parent`:
 * it ended (SIGKILL included) and this process was handed to init or a subreaper. The parent pid
 * is read anew each time, under Node and Deno alike (`process.ppid`; Deno 2 reads it live too).
 * The timer never keeps the process alive.
 *
 * @example watchParent(process.ppid, function parentGone() { stop(0); });
 */
export function watchParent(parent: number, gone: (parent: number) => void, everyMs = 500): void {
  const timer = setInterval(function checkParent() {
    if (process.ppid === parent) return;
    clearInterval(timer);
    gone(parent);
  }, everyMs);
  timer.unref();
}

/**
 * A service's watch on its launcher: when `env.LAUNCHER_PID` is set and its parent is no longer
 * that process, calls `gone(launcherPid)` once, and the service stops as on SIGTERM. Without the
 * variable it does nothing, so a service started by hand or by a service manager keeps running
 * when it is re-parented. A value that is not a pid is ignored, like an unset one.
 *
 * @example watchLauncher(process.env, (pid) => { log.warn("launcher gone", { pid }); stop("launcher gone"); });
 */
export function watchLauncher(
  env: Record<string, string | undefined>,
  gone: (launcherPid: number) => void,
  everyMs = 500,
): void {
  const value = env[LAUNCHER_PID];
  if (!value || !/^[1-9]\d*$/.test(value)) return;
  watchParent(Number(value), gone, everyMs);
}
