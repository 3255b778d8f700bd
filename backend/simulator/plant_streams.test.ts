import assert from "node:assert/strict";
import { test } from "node:test";
import { createPlantStreams } from "./plant_streams.ts";

async function data(gzip: Uint8Array): Promise<Record<string, number>> {
  const inflated = new Blob([gzip as Uint8Array<ArrayBuffer>])
    .stream()
    .pipeThrough(new DecompressionStream("gzip"));
  return JSON.parse(await new Response(inflated).text()).data;
}

test("plantStreams forgets the least recently used plant past idleLimit, never the run's", async () => {
  const streams = createPlantStreams({ nFeatures: 5, seed: 1, idleLimit: 2 });
  streams.keep(["plant-0"]);
  const first = new Map<string, Record<string, number>>();
  for (const id of ["plant-0", "a", "b", "a", "c"]) {
    const frame = await streams.next(id, 1);
    if (frame.frameIndex === 0) first.set(id, await data(frame.gzip));
  }
  assert.deepEqual(streams.known(), ["plant-0", "a", "c"], "b was used least recently");
  // A forgotten stream starts afresh, with noise of its own (not that of a plant still held).
  const again = await streams.next("b", 1);
  assert.equal(again.frameIndex, 0);
  const fresh = await data(again.gzip);
  for (const id of ["plant-0", "a", "c"]) assert.notDeepEqual(fresh, first.get(id), id);
  await streams.next("d", 1);
  assert.deepEqual(streams.known(), ["plant-0", "b", "d"]);
  streams.keep([]);
  assert.deepEqual(streams.known(), ["b", "d"], "the run's plants are idle once it ends");
});

test("plantStreams moves a stream it has no plant for back without making one", () => {
  const streams = createPlantStreams({ nFeatures: 5, seed: 1 });
  assert.equal(streams.moveOperatingPoint("x", false), undefined);
  assert.deepEqual(streams.known(), []);
  assert.ok(streams.moveOperatingPoint("x", true));
  assert.deepEqual(streams.movedStreams(), ["x"]);
  assert.throws(() => createPlantStreams({ nFeatures: 5, seed: 1, idleLimit: 0 }), /'idleLimit'/);
});
