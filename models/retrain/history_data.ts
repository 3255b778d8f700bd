// Turns a model's recorded history into what retraining needs: training frames, the recent stretch that judges, confirmed incidents.
import { frameUse, type HistoryFrame, type HistoryRead } from "../../engine/history/mod.ts";

/** Consecutive frames of one stream (same recorder session, consecutive `seq`). */
export interface Run {
  streamId: string;
  frames: HistoryFrame[];
}

/** A confirmed incident with the frames around it that the recorder kept. */
export interface ConfirmedIncident {
  id: string;
  streamId: string;
  /** The run holding it: context before it, the incident's frames, what followed. */
  run: Run;
  first: number;
  last: number;
}

/** Recent frames held out from training for the gate: at least this many... */
export const MIN_RECENT_FRAMES = 200;
/** ...or this share of the usable frames, whichever is more. */
export const RECENT_SHARE = 0.2;
/** Usable frames a candidate needs to train on at least. */
export const MIN_TRAIN_FRAMES = 600;

export interface PreparedHistory {
  /** Training series: usable frames of the older part, run by run in time (streams interleaved). */
  train: {
    values: Float32Array;
    nFrames: number;
    /** 1 for a row of an incident operators judged a false positive (used as normal), else 0. */
    falsePositive: Uint8Array;
    runs: number;
    from: number;
    to: number;
  };
  /** The recent stretch (usable frames only), as runs: scored by both models, never trained on. */
  recent: { runs: Run[]; frames: number; from: number; to: number };
  confirmed: ConfirmedIncident[];
  usable: number;
  /** Frames read and left out, by why (incident verdicts, unjudged incidents). */
  excluded: Record<string, number>;
  /** Frames of incidents judged false alarms, used as normal. */
  falsePositiveFrames: number;
}

/** Splits `frames` (one stream, recorded order) into runs of consecutive frames. */
function runsOf(frames: HistoryFrame[]): Run[] {
  const runs: Run[] = [];
  let current: HistoryFrame[] = [];
  for (const f of frames) {
    const prev = current.at(-1);
    if (prev && (prev.session !== f.session || prev.seq + 1 !== f.seq)) {
      runs.push({ streamId: prev.streamId, frames: current });
      current = [];
    }
    current.push(f);
  }
  if (current.length) runs.push({ streamId: current[0].streamId, frames: current });
  return runs;
}

/** Usable (trainable) sub-runs of a run: an excluded frame breaks it. */
function usableRuns(run: Run, use: (f: HistoryFrame) => boolean): Run[] {
  const out: Run[] = [];
  let current: HistoryFrame[] = [];
  for (const f of run.frames) {
    if (use(f)) current.push(f);
    else if (current.length) {
      out.push({ streamId: run.streamId, frames: current });
      current = [];
    }
  }
  if (current.length) out.push({ streamId: run.streamId, frames: current });
  return out;
}

/**
 * Usable frames are those `frameUse` allows (outside incidents, or of incidents judged false
 * alarms). The most recent `max(MIN_RECENT_FRAMES, RECENT_SHARE of them)` by time form the
 * recent stretch; the rest, in runs ordered by their first frame's time (the streams' runs
 * interleaved), the training series. Throws a `RangeError`
 * saying what is missing when the training part would have fewer than `MIN_TRAIN_FRAMES`.
 */
export function prepareHistory(read: HistoryRead, nFeatures: number): PreparedHistory {
  const byStream = new Map<string, HistoryFrame[]>();
  const excluded: Record<string, number> = {};
  let falsePositiveFrames = 0;
  const frames = read.frames.filter((f) => f.values.length === nFeatures);
  for (const f of frames) {
    const list = byStream.get(f.streamId) ?? [];
    list.push(f);
    byStream.set(f.streamId, list);
    const u = frameUse(f, read.index);
    if (!u.use) excluded[u.why] = (excluded[u.why] ?? 0) + 1;
    else if (u.why === "false_positive") falsePositiveFrames++;
  }
  const use = (f: HistoryFrame) => frameUse(f, read.index).use;
  const runs = [...byStream.values()].flatMap(runsOf);
  const usable = runs.flatMap((r) => usableRuns(r, use));
  const times = usable.flatMap((r) => r.frames.map((f) => f.timestamp)).sort((a, b) => a - b);
  const total = times.length;
  const recentCount = Math.max(MIN_RECENT_FRAMES, Math.ceil(RECENT_SHARE * total));
  if (total - recentCount < MIN_TRAIN_FRAMES) {
    // Why the rest was left out: in a young history, mostly incidents nobody judged yet.
    const why = Object.entries(excluded)
      .sort((a, b) => b[1] - a[1])
      .map(([reason, n]) => `${n} ${reason}`)
      .join(", ");
    throw new RangeError(
      `too little history: ${total} usable frames (of ${read.frames.length} read${why ? `; left out: ${why}` : ""}); a candidate needs at least ` +
        `${MIN_TRAIN_FRAMES + MIN_RECENT_FRAMES} (${MIN_TRAIN_FRAMES} to train on, then the most recent ` +
        `${MIN_RECENT_FRAMES}, or ${RECENT_SHARE * 100} %, to judge it)`,
    );
  }
  const cut = times[total - recentCount];
  const trainRuns: Run[] = [];
  const recentRuns: Run[] = [];
  for (const run of usable) {
    const before = run.frames.filter((f) => f.timestamp < cut);
    const after = run.frames.filter((f) => f.timestamp >= cut);
    if (before.length) trainRuns.push({ streamId: run.streamId, frames: before });
    if (after.length) recentRuns.push({ streamId: run.streamId, frames: after });
  }
  // In time, the streams' runs interleaved: training fits on the first part of the series and
  // calibrates on the rest (60 %), so stream by stream a model of several machines was fitted on
  // the first few and calibrated on the others.
  trainRuns.sort(
    (a, b) =>
      a.frames[0].timestamp - b.frames[0].timestamp ||
      (a.streamId < b.streamId ? -1 : a.streamId > b.streamId ? 1 : 0),
  );
  const nFrames = trainRuns.reduce((n, r) => n + r.frames.length, 0);
  const values = new Float32Array(nFrames * nFeatures);
  const falsePositive = new Uint8Array(nFrames);
  let row = 0;
  for (const run of trainRuns) {
    for (const f of run.frames) {
      if (f.incident) falsePositive[row] = 1;
      values.set(f.values, nFeatures * row++);
    }
  }

  const confirmed: ConfirmedIncident[] = [];
  for (const [id, entry] of Object.entries(read.index.incidents)) {
    if (entry.verdict !== "true_positive") continue;
    const run = runs.find((r) => r.frames.some((f) => f.incident === id));
    if (run)
      confirmed.push({ id, streamId: entry.stream, run, first: entry.first, last: entry.last });
  }
  const trainTimes = trainRuns.flatMap((r) => [r.frames[0].timestamp, r.frames.at(-1)!.timestamp]);
  return {
    train: {
      values,
      nFrames,
      falsePositive,
      runs: trainRuns.length,
      // Not Math.min(...xs): a spread of more than ~120,000 values overflows the stack.
      from: trainTimes.reduce((a, b) => Math.min(a, b), Number.POSITIVE_INFINITY),
      to: trainTimes.reduce((a, b) => Math.max(a, b), Number.NEGATIVE_INFINITY),
    },
    recent: {
      runs: recentRuns,
      frames: recentRuns.reduce((n, r) => n + r.frames.length, 0),
      from: cut,
      to: times[total - 1],
    },
    confirmed,
    usable: total,
    excluded,
    falsePositiveFrames,
  };
}
