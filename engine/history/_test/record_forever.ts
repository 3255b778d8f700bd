// A process that records frames into a history folder as fast as it can until it is killed (the crash test's victim).
import { IncidentTracker } from "../../../scoring/incident_tracker.ts";
import { HistoryRecorder } from "../history_recorder.ts";
import { feed, modelOf, quiet } from "./scored_rows.ts";

const [dir, featuresArg] = process.argv.slice(2);
const model = modelOf(Number(featuresArg));
const recorder = new HistoryRecorder({
  dir,
  model,
  maxBytes: 2 ** 40,
  everyN: 1,
  runFrames: 10,
  tracker: (m) =>
    new IncidentTracker({
      nFeatures: m.n_features,
      modelVersion: m.version,
      confirmK: 1,
      confirmN: 1,
      quietWindows: 1,
      updateMinMs: 0,
      updateSeverityRise: 1,
      maxFeatures: 1,
    }),
});
let seq = 0;
for (;;) {
  feed(recorder, model, quiet("a", seq, 8), { batchSize: 8 });
  seq += 8;
  await recorder.flush();
  process.stdout.write(`${seq}\n`);
}
