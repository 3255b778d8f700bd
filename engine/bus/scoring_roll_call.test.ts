// The scoring roll call against a real nats-server: every live worker's figures gathered, a worker that never answers costs at most the wait, a silent worker's last answer kept while its heartbeat lives, malformed answers skipped.
import assert from "node:assert/strict";
import { test } from "node:test";
import { type KV, Kvm } from "@nats-io/kv";
import { waitFor } from "../_test/wait_for.ts";
import { natsTrio, recordingLog } from "./_test/nats_trio.ts";
import { mergeScoring, type ScoringFigures, ScoringRollCall } from "./scoring_roll_call.ts";

const WAIT_MS = 300;

const nats = natsTrio();

/** A worker's figures: `scored` frames, latency and inference percentiles as given. */
function figures(
  scored: number,
  latency: [p50: number, p99: number],
  inference: Record<string, number>,
): ScoringFigures {
  return {
    partitions: [0],
    frames: { scored },
    batches: scored / 2,
    queue: { depth: 1, capacity: 10 },
    latency_ms: {
      count: scored,
      p50: latency[0],
      p90: latency[1] - 1,
      p99: latency[1],
      max: latency[1] + 1,
    },
    inference_ms: {
      count: scored / 2,
      p50: latency[0] / 2,
      p99: latency[1] / 2,
      by_batch_size: inference,
    },
    alerts: { generated: 2, delivered: 1, outbox: 1 },
  };
}

/** A lease bucket of its own, with a heartbeat for each worker id given (expiring in a minute). */
async function leases(prefix: string, ...live: string[]): Promise<KV> {
  const kv = await new Kvm(nats.r).create(`${prefix}_leases`, { history: 1 });
  for (const id of live) await beat(kv, id);
  return kv;
}

const beat = (kv: KV, id: string) =>
  kv.put(`w.${id}`, JSON.stringify({ expires: Date.now() + 60_000 }));

/** A replica's roll call following `kv`'s heartbeats until the test ends; resolves once it sees `n`. */
async function replica(prefix: string, kv: KV, n: number, log = recordingLog().log) {
  const call = new ScoringRollCall({ nc: nats.r, prefix, log, waitMs: WAIT_MS });
  const stop = new AbortController();
  const following = call.follow(kv, stop.signal);
  await waitFor(() => call.liveWorkers === n, `${n} live workers seen`, 5000);
  return {
    call,
    async close() {
      stop.abort();
      await following;
    },
  };
}

/** Resolves with `promise`, or rejects once a generous deadline passes: a gather that hangs fails. */
function settlesIn<T>(promise: Promise<T>, ms = 5000): Promise<T> {
  const deadline = AbortSignal.timeout(ms);
  return Promise.race([
    promise,
    new Promise<never>((_, reject) =>
      deadline.addEventListener("abort", () => reject(new Error(`not settled in ${ms} ms`)), {
        once: true,
      }),
    ),
  ]);
}

test("mergeScoring sums the counts and takes the highest worker's time figures", () => {
  const merged = mergeScoring([
    figures(10, [4, 9], { "1": 2, "4": 3 }),
    figures(30, [6, 8], { "4": 5, "16": 7 }),
  ]);
  assert.deepEqual(merged, {
    scored: 40,
    batches: 20,
    latency_ms: { count: 40, p50: 6, p90: 8, p99: 9, max: 10 },
    inference_ms: { count: 20, p50: 3, p99: 4.5, by_batch_size: { "1": 2, "4": 5, "16": 7 } },
    alerts: { generated: 4, delivered: 2, outbox: 2 },
  });
  assert.deepEqual(mergeScoring([]), {
    scored: 0,
    batches: 0,
    latency_ms: { count: 0, p50: 0, p90: 0, p99: 0, max: 0 },
    inference_ms: { count: 0, p50: 0, p99: 0, by_batch_size: {} },
    alerts: { generated: 0, delivered: 0, outbox: 0 },
  });
});

test("a roll call gathers every live worker's figures, and a live worker that never answers only bounds the wait", async () => {
  const prefix = "RC1";
  // "ghost" has a heartbeat but no process: it is waited for, up to WAIT_MS.
  const kv = await leases(prefix, "a", "b", "ghost");
  const stop = new AbortController();
  const { log } = recordingLog();
  new ScoringRollCall({ nc: nats.a, prefix, log }).answer(
    "a",
    () => figures(10, [4, 9], {}),
    stop.signal,
  );
  new ScoringRollCall({ nc: nats.b, prefix, log }).answer(
    "b",
    () => figures(30, [6, 8], {}),
    stop.signal,
  );
  const r = await replica(prefix, kv, 3);
  try {
    const workers = await settlesIn(r.call.gather());
    assert.deepEqual(
      workers.map((w) => [w.worker, w.frames.scored, w.latency_ms.p99]),
      [
        ["a", 10, 9],
        ["b", 30, 8],
      ],
    );
    assert.ok(workers.every((w) => Number.isFinite(Date.parse(w.at))));
    // Callers at the same moment share one roll call.
    const [x, y] = await settlesIn(Promise.all([r.call.gather(), r.call.gather()]));
    assert.deepEqual(x, y);
  } finally {
    stop.abort();
    await r.close();
  }
});

test("a live worker that stops answering keeps its last figures until its heartbeat ends; without live workers nobody is asked", async () => {
  const prefix = "RC2";
  const kv = await leases(prefix, "a", "b");
  const { log } = recordingLog();
  const stopA = new AbortController();
  const stopB = new AbortController();
  let scoredB = 5;
  new ScoringRollCall({ nc: nats.a, prefix, log }).answer(
    "a",
    () => figures(10, [4, 9], {}),
    stopA.signal,
  );
  new ScoringRollCall({ nc: nats.b, prefix, log }).answer(
    "b",
    () => figures(scoredB, [1, 2], {}),
    stopB.signal,
  );
  const r = await replica(prefix, kv, 2);
  try {
    const first = await settlesIn(r.call.gather());
    const atA = first.find((w) => w.worker === "a")?.at;
    assert.ok(atA);
    // "a" is frozen (its heartbeat lives on): listed with what it last said, "b" afresh.
    stopA.abort();
    scoredB = 7;
    const second = await settlesIn(r.call.gather());
    assert.deepEqual(
      second.map((w) => [w.worker, w.frames.scored, w.at === atA]),
      [
        ["a", 10, true],
        ["b", 7, false],
      ],
    );
    // "a" left (its heartbeat deleted, as a clean stop does): it is no longer listed.
    await kv.delete("w.a");
    await waitFor(() => r.call.liveWorkers === 1, "a's heartbeat gone", 5000);
    const third = await settlesIn(r.call.gather());
    assert.deepEqual(
      third.map((w) => w.worker),
      ["b"],
    );
    // Nobody live: nothing asked, nothing listed.
    await kv.delete("w.b");
    await waitFor(() => r.call.liveWorkers === 0, "b's heartbeat gone", 5000);
    assert.deepEqual(await settlesIn(r.call.gather()), []);
  } finally {
    stopA.abort();
    stopB.abort();
    await r.close();
  }
});

test("a malformed answer is skipped with one warning; the other workers' figures stand", async () => {
  const prefix = "RC3";
  const kv = await leases(prefix, "a", "bad");
  const stop = new AbortController();
  new ScoringRollCall({ nc: nats.a, prefix, log: recordingLog().log }).answer(
    "a",
    () => figures(10, [4, 9], {}),
    stop.signal,
  );
  const bad = nats.b.subscribe(`${prefix}.scoring`, {
    callback(_error, msg) {
      msg.respond(JSON.stringify({ worker: "bad", frames: "many" }));
    },
  });
  const { log, lines } = recordingLog();
  const r = await replica(prefix, kv, 2, log);
  try {
    for (let i = 0; i < 2; i++) {
      const workers = await settlesIn(r.call.gather());
      assert.deepEqual(
        workers.map((w) => w.worker),
        ["a"],
      );
    }
    assert.equal(lines.filter((l) => /scoring answer is malformed/.test(l.msg)).length, 1);
  } finally {
    stop.abort();
    bad.unsubscribe();
    await r.close();
  }
});
