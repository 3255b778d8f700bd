import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { parseModelMetadata } from "../../contracts/model.ts";
import { faultKindTable, runFaultKindEval } from "./fault_kind_eval.ts";

const MODEL = new URL("../featurewise_ocsvm", import.meta.url).pathname;

test("runFaultKindEval reads stuck sensors as sensor and level shifts across partners as process", async () => {
  const meta = parseModelMetadata(JSON.parse(await readFile(`${MODEL}.json`, "utf8")));
  const onnx = new Uint8Array(await readFile(`${MODEL}.onnx`));
  const r = runFaultKindEval({ meta, onnx, eventsPerKind: 3, seed: 7 });
  assert.equal(r.by_kind.stuck.events, 3);
  assert.equal(r.by_kind.stuck.right, 3, "a stuck sensor is a flat line: the instrument");
  assert.equal(r.by_kind.level_shift.right, 3, "a shift its partners share: the process");
  assert.match(faultKindTable(r), /\| stuck \| sensor \| 3 \| 100% \| 3 \|/);
});
