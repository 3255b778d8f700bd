import assert from "node:assert/strict";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import {
  FileIncidentStateStore,
  incidentStateDir,
  moveLegacyIncidentStates,
} from "./incident_state_store.ts";

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

test("fileIncidentStateStore saves, reloads and deletes 128-character stream ids of ':' and '.'", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "incident-state-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  // Valid ids ([A-Za-z0-9._:-]{1,128}) whose percent-encoded names would be over 255 bytes; two
  // share their first characters, so only what follows tells them apart.
  const ids = [`pump-${":".repeat(123)}`, `pump-${":".repeat(122)}.`, ".".repeat(128), "line:1"];
  const store = new FileIncidentStateStore(dir);
  await store.save(
    ids.map((streamId, i) => ({ streamId, state: state(i) })),
    true,
  );
  for (const file of await readdir(dir)) {
    assert.ok(Buffer.byteLength(file) <= 160, `${file} leaves room for a suffix`);
  }
  const loaded = await new FileIncidentStateStore(dir).load();
  assert.deepEqual(
    ids.map((id) => loaded.get(id)),
    ids.map((_, i) => state(i)),
  );
  await store.save([{ streamId: ids[0], state: state(9) }], false);
  assert.deepEqual((await store.load()).get(ids[0]), state(9), "saved again in place");
  await store.save(
    ids.map((streamId) => ({ streamId, state: undefined })),
    false,
  );
  assert.deepEqual(await readdir(dir), []);
});

test("fileIncidentStateStore loads states an earlier release saved under their encoded names", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "incident-state-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  // Written as earlier releases did: the encoded id is the name, the content only the state.
  const long = `line${":".repeat(60)}`; // 189 bytes encoded: it fits, but is now hashed.
  await writeFile(join(dir, `line${"%3A".repeat(60)}.json`), JSON.stringify(state(1)));
  await writeFile(join(dir, "line%3A2.json"), JSON.stringify(state(2)));
  const store = new FileIncidentStateStore(dir);
  const loaded = await store.load();
  assert.deepEqual(loaded.get(long), state(1));
  assert.deepEqual(loaded.get("line:2"), state(2));
  await store.save([{ streamId: long, state: state(3) }], true);
  const again = await new FileIncidentStateStore(dir).load();
  assert.deepEqual([...again.keys()].sort(), ["line:2", long].sort());
  assert.deepEqual(again.get(long), state(3), "one file per stream: the newest state");
  assert.equal((await readdir(dir)).length, 2);
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

test("moveLegacyIncidentStates moves each state of the earlier default folder to its model's folder", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "incident-state-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const legacy = join(dir, "incidents");
  const named = (name: string, last: number) => ({
    ...state(last),
    model: { name, version: "1", features: "f" },
  });
  await new FileIncidentStateStore(legacy).save(
    [
      { streamId: "kiln", state: named("boiler", 1) },
      { streamId: "line:b", state: named("packaging", 2) },
      { streamId: "old", state: state(3) },
      { streamId: "stale", state: named("packaging", 4) },
      { streamId: "odd", state: named("../x", 5) },
    ],
    true,
  );
  await writeFile(join(legacy, "torn.json.tmp"), '{"snap');
  await writeFile(join(legacy, "bad.json"), "{");
  // The packaging line was routed in between and saved a newer state of "stale" in its own folder.
  const packaging = new FileIncidentStateStore(incidentStateDir(dir, "packaging"));
  await new Promise((r) => setTimeout(r, 20));
  await packaging.save([{ streamId: "stale", state: named("packaging", 40) }], true);

  assert.equal(await moveLegacyIncidentStates(dir, "boiler"), 5);
  assert.deepEqual((await readdir(dir)).sort(), ["incidents-boiler", "incidents-packaging"]);
  const heard: string[] = [];
  const boiler = await new FileIncidentStateStore(incidentStateDir(dir, "boiler"), {
    onUnusable: (file) => heard.push(file),
  }).load();
  assert.deepEqual([...boiler.keys()].sort(), ["kiln", "odd", "old"]);
  assert.equal(heard.length, 1, "the unreadable file is moved aside by the default model's load");
  const pack = await packaging.load();
  assert.deepEqual([...pack.keys()].sort(), ["line:b", "stale"]);
  assert.equal(pack.get("stale")?.snapshot?.last, 40, "the newer state stays");
  assert.ok(
    (await readdir(incidentStateDir(dir, "packaging"))).some((f) =>
      f.startsWith("stale.json.superseded-"),
    ),
    "the older one is moved aside, not erased",
  );
  assert.equal(await moveLegacyIncidentStates(dir, "boiler"), 0, "nothing left to move");
});
