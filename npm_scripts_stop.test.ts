// `npm run backend` and `npm run engine` stopped with SIGTERM to npm alone (a supervisor, a container whose command is npm): the service drains and frees its port.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { freePort } from "./backend/_test/free_port.ts";
import { spawnService, waitFor } from "./backend/_test/spawn_service.ts";

/** The processes below `root` (Linux's /proc), children first. */
function descendantsOf(root: number): number[] {
  const children: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === root) {
        children.push(Number(name));
      }
    } catch {
      // Ended meanwhile.
    }
  }
  return [...children, ...children.flatMap(descendantsOf)];
}

const answers = (url: string) =>
  fetch(url, { signal: AbortSignal.timeout(2000) }).then(
    (res) => res.status < 500,
    () => false,
  );

for (const service of ["backend", "engine"] as const) {
  test(`SIGTERM to 'npm run ${service}' reaches the ${service}: it stops and frees its port`, async () => {
    const port = await freePort();
    const health = `http://127.0.0.1:${port}/health/live`;
    const npm = spawnService(
      ["npm", "run", "--silent", service],
      service === "backend"
        ? { PORT: String(port), DATABASE_URL: "", SIMULATOR_RATE_HZ: "0" }
        : { APP_PORT: String(port), APP_HOST: "127.0.0.1" },
    );
    let below: number[] = [];
    try {
      await waitFor(
        async () => ((await answers(health)) ? true : undefined),
        `${service} answering`,
        120_000,
        200,
      );
      below = descendantsOf(npm.child.pid as number);
      assert.ok(below.length > 0, "npm runs the service below it");
      npm.child.kill("SIGTERM");
      // The service itself got the signal: it drains and exits, and its port is free.
      await waitFor(
        async () => ((await answers(health)) ? undefined : true),
        `${service} no longer answering after SIGTERM to npm`,
        30_000,
        200,
      );
      await waitFor(
        async () => (below.every((pid) => !alive(pid)) ? true : undefined),
        "every process below npm gone",
        30_000,
        100,
      );
      if (service === "backend") assert.ok(npm.lines.some((l) => l.includes("backend stopped")));
    } finally {
      for (const pid of below) if (alive(pid)) process.kill(pid, "SIGKILL");
      await npm.stop("SIGKILL");
    }
  });
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}
