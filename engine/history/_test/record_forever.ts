// A process that records frames into a history folder as fast as it can until it is killed (the crash test's victim).
import { crashTestRecorder, feed, modelOf, quiet } from "./scored_rows.ts";

const [dir, featuresArg] = process.argv.slice(2);
const model = modelOf(Number(featuresArg));
const recorder = crashTestRecorder(dir, model);
let seq = 0;
for (;;) {
  feed(recorder, model, quiet("a", seq, 8), { batchSize: 8 });
  seq += 8;
  await recorder.flush();
  process.stdout.write(`${seq}\n`);
}
