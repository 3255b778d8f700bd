// The streams seen, kept across restarts: what is listed as silent, the bound, an unusable file.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { SEEN_STREAMS_FILE, SeenMemory, SeenStreams } from "./seen_streams.ts";
import { StreamWindows } from "./stream_windows.ts";

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "seen-streams-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const noProblem = (file: string, problem: string) => assert.fail(`${file}: ${problem}`);

test("a remembered stream no lane holds is silent by the lanes' rule; one a lane holds is the lane's to list", async () => {
  const at = join(dir, "rule");
  const lane = new StreamWindows({ windowSize: 2, frameSize: 1 });
  // Frames every 10 s: silent once quiet for more than 10 intervals (100 s) and 60 s.
  for (const t of [0, 10_000, 20_000]) lane.admit("slow", t, t);
  lane.admit("fast", 1, 0);
  lane.admit("fast", 2, 500);
  await (await SeenStreams.open(await mkdirp(at), noProblem)).save([lane]);

  const seen = await SeenStreams.open(at, noProblem);
  assert.equal(seen.size, 2);
  assert.deepEqual(seen.silent(100_000, 60_000, []), [
    { stream_id: "fast", last_accepted_at: new Date(500).toISOString() },
  ]);
  assert.deepEqual(
    seen.silent(130_000, 60_000, []).map((s) => s.stream_id),
    ["slow", "fast"],
  );
  const fresh = new StreamWindows({ windowSize: 2, frameSize: 1 });
  fresh.admit("fast", 3, 129_000);
  assert.deepEqual(
    seen.silent(130_000, 60_000, [fresh]).map((s) => s.stream_id),
    ["slow"],
    "a stream a lane holds again is not listed from memory",
  );
});

test("the most recently active streams are kept, the newest frame of a stream wins, an unchanged set is not written again", async () => {
  const at = await mkdirp(join(dir, "bound"));
  const seen = await SeenStreams.open(at, noProblem, 2);
  const lane = new StreamWindows({ windowSize: 2, frameSize: 1 });
  for (const [id, t] of [
    ["a", 1000],
    ["b", 2000],
    ["c", 3000],
  ] as const)
    lane.admit(id, t, t);
  await seen.save([lane]);
  assert.deepEqual(
    (await SeenStreams.open(at, noProblem)).silent(1e9, 1, []).map((s) => s.stream_id),
    ["c", "b"],
  );
  const older = new StreamWindows({ windowSize: 2, frameSize: 1 });
  older.admit("c", 1, 10);
  await seen.save([older]);
  assert.deepEqual(
    seen.silent(1e9, 1, []).find((s) => s.stream_id === "c"),
    { stream_id: "c", last_accepted_at: new Date(3000).toISOString() },
  );
  await writeFile(join(at, SEEN_STREAMS_FILE), "changed by hand");
  await seen.save([lane]);
  assert.equal(await readFile(join(at, SEEN_STREAMS_FILE), "utf8"), "changed by hand");
});

test("an unusable file is reported and read as empty; the next save replaces it", async () => {
  for (const [name, text, problem] of [
    ["garbage", "{not json", /not JSON/],
    ["shape", JSON.stringify({ format: 1, streams: [{ stream_id: "a b", seen_at: "x" }] }), /./],
    ["format", JSON.stringify({ format: 2, streams: [] }), /format/],
  ] as const) {
    const at = await mkdirp(join(dir, name));
    await writeFile(join(at, SEEN_STREAMS_FILE), text);
    const problems: string[] = [];
    const seen = await SeenStreams.open(at, (file, p) => {
      assert.equal(file, join(at, SEEN_STREAMS_FILE));
      problems.push(p);
    });
    assert.equal(problems.length, 1, name);
    assert.match(problems[0], problem);
    assert.equal(seen.size, 0);
    const lane = new StreamWindows({ windowSize: 2, frameSize: 1 });
    lane.admit("a", 1, 1);
    await seen.save([lane]);
    assert.equal((await SeenStreams.open(at, noProblem)).size, 1, name);
  }
});

async function mkdirp(path: string): Promise<string> {
  await mkdir(path, { recursive: true });
  return path;
}

test("seenMemory reads what it writes, leaves out the streams `keep` refuses and says why a text is unusable", () => {
  const lane = new StreamWindows({ windowSize: 2, frameSize: 1 });
  lane.admit("kept", 1, 1000);
  lane.admit("other", 1, 2000);
  const written = new SeenMemory();
  written.fold([lane]);
  const read = new SeenMemory();
  assert.equal(
    read.read(written.text(), (id) => id === "kept"),
    undefined,
  );
  assert.deepEqual(read.silent(1e9, 1, []), [
    { stream_id: "kept", last_accepted_at: new Date(1000).toISOString() },
  ]);
  assert.match(read.read("{not json") ?? "", /not JSON/);
  assert.equal(read.size, 1, "an unusable text changes nothing");
  assert.throws(() => new SeenMemory(0), /'max' must be a positive integer, got 0/);
});

test("seenMemory keeps its bound when it reads what another wrote: the most recently active", () => {
  const older = new StreamWindows({ windowSize: 2, frameSize: 1 });
  older.admit("old-1", 1, 1000);
  older.admit("old-2", 1, 2000);
  const newer = new StreamWindows({ windowSize: 2, frameSize: 1 });
  newer.admit("new-1", 1, 3000);
  newer.admit("new-2", 1, 4000);
  const a = new SeenMemory(2);
  a.fold([older]);
  const b = new SeenMemory(2);
  b.fold([newer]);
  assert.equal(b.read(a.text()), undefined);
  assert.equal(b.size, 2);
  assert.deepEqual(
    b
      .silent(1e9, 1, [])
      .map((s) => s.stream_id)
      .sort(),
    ["new-1", "new-2"],
  );
});
