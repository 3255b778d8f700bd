// Run under `ulimit -f 0` (every write to a file fails, as on a full disk): records quiet windows
// into `argv[2]` and flushes `argv[3]` times, then prints the open descriptors before and after.
import { readdirSync } from "node:fs";
import { HistoryRecorder } from "../history_recorder.ts";
import { feed, modelOf, quiet } from "./scored_rows.ts";

const [dir, rounds] = [process.argv[2], Number(process.argv[3])];
const model = modelOf(8);
const recorder = new HistoryRecorder({
  dir,
  model,
  maxBytes: 64 * 2 ** 20,
  everyN: 1,
  runFrames: 10,
});
const fds = () => readdirSync("/proc/self/fd").length;
let before = 0;
for (let i = 0; i < rounds; i++) {
  feed(recorder, model, quiet("a", i * 20, 20), { t0: 1_700_000_000_000 });
  await recorder.flush();
  if (i === 0) before = fds();
}
process.stdout.write(`${JSON.stringify({ before, after: fds() })}\n`);
