// What /proc says of processes a test started: whether one still runs, and a retraining child.
import { readFileSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";

/** Whether `pid` runs (a zombie nobody reaped has ended). */
export function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

/** The retraining CLI process `parent` started, if one runs. */
export async function retrainChildOf(parent: number): Promise<number | undefined> {
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, "utf8").catch(() => "");
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    if (ppid !== parent) continue;
    const cmdline = await readFile(`/proc/${name}/cmdline`, "utf8").catch(() => "");
    if (cmdline.includes("models/retrain/cli.ts")) return Number(name);
  }
  return undefined;
}
