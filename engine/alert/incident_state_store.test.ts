import assert from "node:assert/strict";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { FileIncidentStateStore } from "./incident_state_store.ts";

const state = (last: number) => ({
  snapshot: { v: 1 as const, last, recent: [last] },
  alerts: [{ id: "a", body: '{"alert_id":"a"}' }],
});

test("fileIncidentStateStore saves, reloads and deletes per stream", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "incident-state-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const store = new FileIncidentStateStore(join(dir, "incidents"));
  assert.equal((await store.load()).size, 0);
  await store.save(
    [
      { streamId: "line:1", state: state(1) },
      { streamId: "..", state: state(2) },
    ],
    true,
  );
  await store.save([{ streamId: "line:1", state: state(3) }], false);
  const again = await new FileIncidentStateStore(join(dir, "incidents")).load();
  assert.deepEqual(again.get("line:1"), state(3));
  assert.deepEqual(again.get(".."), state(2), "a stream id is never a path");
  await store.save([{ streamId: "..", state: undefined }], false);
  assert.deepEqual([...(await store.load()).keys()], ["line:1"]);
});

test("fileIncidentStateStore ignores a torn temporary file left by a crash", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "incident-state-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const store = new FileIncidentStateStore(dir);
  await store.save([{ streamId: "s", state: state(1) }], true);
  await writeFile(join(dir, "s.json.tmp"), '{"snap');
  assert.deepEqual((await store.load()).get("s"), state(1));
  assert.equal((await readdir(dir)).length, 2);
});

test("fileIncidentStateStore moves an unreadable state file aside and loads the others", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "incident-state-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const heard: string[] = [];
  const store = new FileIncidentStateStore(dir, { onUnusable: (file) => heard.push(file) });
  await store.save([{ streamId: "good", state: state(1) }], true);
  await writeFile(join(dir, "torn.json"), '{"snapshot":{"v":1,"last":17');
  const loaded = await store.load();
  assert.deepEqual([...loaded.keys()], ["good"]);
  assert.equal(heard.length, 1);
  const files = await readdir(dir);
  assert.ok(!files.includes("torn.json"));
  assert.ok(files.some((f) => f.startsWith("torn.json.unusable-")));
  // The next start loads the same, and hears of nothing.
  assert.deepEqual([...(await store.load()).keys()], ["good"]);
  assert.equal(heard.length, 1);
});
