// The retraining child outlives no engine killed with `kill -9` (real processes, Node and Deno): it ends itself, its parent gone.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { NAME, plantFrames, trainInto } from "../../models/retrain/_test/plant_history.ts";
import { retrainChildOf, running } from "../_test/processes.ts";
import { waitFor } from "../_test/wait_for.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const CHILD = new URL("./retrain_child.ts", import.meta.url).href;

let root: string;
/** Retraining children found, killed here should one outlive its test. */
const children: number[] = [];

before(async () => {
  root = await mkdtemp(join(tmpdir(), "retrain-child-orphan-"));
  await trainInto(join(root, "models"), plantFrames(1200, 1), true);
  // A chunk that is a pipe nobody writes: the run's read of the history waits on it for ever
  // (as on a stalled network mount), so its parent is surely killed mid-run.
  await mkdir(join(root, "history", NAME, "stalled"), { recursive: true });
  execFileSync("mkfifo", [join(root, "history", NAME, "stalled", "000000000000.chunk")]);
});

after(async () => {
  for (const pid of children) if (running(pid)) process.kill(pid, "SIGKILL");
  await rm(root, { recursive: true, force: true });
});

for (const runtime of ["deno", "node"] as const) {
  test(`a retraining child started under ${runtime} ends itself once its parent is killed with kill -9`, async () => {
    // The engine's own call, in a process of the runtime under test: the child is started as the
    // engine starts it there (Deno: `deno run`, Node: through run_ts.mjs), with its watch.
    const script = `import { runRetrainChild } from ${JSON.stringify(CHILD)};
await runRetrainChild({
  model: ${JSON.stringify(NAME)},
  env: ${JSON.stringify({
    MODEL_DIR: join(root, "models"),
    HISTORY_DIR: join(root, "history"),
    DEFAULT_DEVICE: "cpu",
    RETRAIN_PROMOTE: "auto",
    TMPDIR: root,
  })},
  signal: new AbortController().signal,
});`;
    const [command, args] =
      runtime === "deno"
        ? [`${ROOT}node_modules/.bin/deno`, ["eval", script]]
        : [process.execPath, ["--import", "tsx", "--input-type=module", "--eval", script]];
    const parent = spawn(command, args, { cwd: ROOT, stdio: "ignore" });
    const gone = new Promise((resolve) => parent.once("close", resolve));
    const child = await waitFor(
      () => retrainChildOf(parent.pid as number),
      "the retraining child",
      60_000,
      100,
    );
    children.push(child);

    parent.kill("SIGKILL");
    await gone;
    // Nothing stopped it: it ends itself, its parent gone.
    await waitFor(() => !running(child), "the orphaned retraining child to end", 15_000, 100);
    assert.equal(running(child), false);
  });
}
