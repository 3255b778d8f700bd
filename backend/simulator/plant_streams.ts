// The simulated streams: one seeded plant per stream, frames as gzip bodies, labelled injections.
import {
  type AnomalyKind,
  type AnomalySpec,
  applyMove,
  createPlant,
  defaultMove,
  mixSeed,
  type OperatingPointMove,
  type Plant,
  plantDriveSensor,
  plantRunningCondition,
  Rng,
  randomAnomaly,
  stoppedFrame,
} from "../../models/signal/mod.ts";
import { frameBody, keyPrefixes } from "./frame_body.ts";
import { gzipText } from "./gzip.ts";

/** Ground truth of one injected anomaly, as recorded when its frames are generated. */
export interface InjectedAnomaly {
  stream_id: string;
  kind: AnomalyKind;
  features: number[];
  feature_names: string[];
  start_frame: number;
  duration: number;
  magnitude: number;
  /** Timestamp (ISO) of the first affected frame, once generated. */
  start_time: string | null;
  /** Timestamp (ISO) of the last affected frame, once generated. */
  end_time: string | null;
}

/** One generated frame, ready to send. */
export interface GeneratedFrame {
  streamId: string;
  frameIndex: number;
  timestamp: number;
  gzip: Uint8Array;
}

export interface PlantStreamsOptions {
  nFeatures: number;
  /** Noise seed: which realisation of the plant (the sensor layout is the models' training plant). */
  seed: number;
  /** Most injections kept as ground truth (oldest forgotten first). */
  historyLimit?: number;
  /**
   * Most plants kept besides the current run's streams (default 16; each holds its sensor table
   * and state, about 4 MB at 25,000 sensors): past it the least recently used is forgotten.
   */
  idleLimit?: number;
}

/** What a planned stop stops: the machine, or only its drive's instrument (it reads 0). */
export const STOP_KINDS = ["machine", "sensor"] as const;
export type StopKind = (typeof STOP_KINDS)[number];

/** Stream ids: `"default"` for a single stream (what the engine assumes), else `plant-N`. */
export function streamIds(count: number): string[] {
  return count === 1 ? ["default"] : Array.from({ length: count }, (_, i) => `plant-${i}`);
}

interface Stream {
  plant: Plant;
  lastTs: number;
  /** Timestamp of the last frame the plant made that went out (not a stopped machine's). */
  lastRunTs: number;
  stoppedFor: number;
  /** Frames for which the drive's instrument reads 0 while the machine runs on (a dead sensor). */
  driveDeadFor: number;
  last?: Float32Array;
  /** The operating point's move, while the stream runs moved. */
  moved?: OperatingPointMove;
}

/**
 * Plants by stream id, created on first use. Frame timestamps strictly increase per stream, so
 * the engine never sees a duplicate or an out-of-order frame from the simulator.
 *
 * Any stream id makes a plant (`POST /data/send` takes any), so they are bounded: the current
 * run's streams ({@link keep}) stay, and of the others the `idleLimit` used most recently; one
 * forgotten starts afresh when used again (frame 0, unmoved, nothing scheduled).
 */
export function createPlantStreams(options: PlantStreamsOptions) {
  const { nFeatures, seed, historyLimit = 10_000, idleLimit = 16 } = options;
  if (!(Number.isInteger(idleLimit) && idleLimit >= 1)) {
    throw new RangeError(`'idleLimit' must be an integer >= 1, got ${idleLimit}`);
  }
  // In use order, least recent first (a Map iterates in insertion order; use re-inserts).
  const plants = new Map<string, Stream>();
  let created = 0;
  let kept = new Set<string>();
  const injected: InjectedAnomaly[] = [];
  const rng = new Rng(mixSeed(seed, 0xa70));
  let prefixes: string[] | undefined;

  function stream(streamId: string): Stream {
    let s = plants.get(streamId);
    if (s) {
      plants.delete(streamId);
      plants.set(streamId, s);
      return s;
    }
    // A count, not the map's size: a plant made after one was forgotten gets noise of its own.
    s = {
      plant: createPlant({ nFeatures, noiseSeed: mixSeed(seed, created++) }),
      lastTs: 0,
      lastRunTs: 0,
      stoppedFor: 0,
      driveDeadFor: 0,
    };
    plants.set(streamId, s);
    forgetIdle();
    return s;
  }

  function forgetIdle() {
    let idle = 0;
    for (const id of plants.keys()) if (!kept.has(id)) idle++;
    for (const id of plants.keys()) {
      if (idle <= idleLimit) return;
      if (kept.has(id)) continue;
      plants.delete(id);
      idle--;
    }
  }

  /** Generates the next frame of a stream and gzips it; records injection times it covers. */
  async function next(streamId: string, now: number): Promise<GeneratedFrame> {
    const s = stream(streamId);
    const frameIndex = s.plant.frameIndex;
    // A stopped machine's plant does not advance: it goes on where it stopped.
    const stopped = s.stoppedFor > 0 && s.last !== undefined;
    let values: Float32Array;
    if (stopped) values = stoppedFrame(s.plant, s.last as Float32Array);
    else {
      values = s.plant.next();
      // next() returns a fresh frame: moved in place.
      if (s.moved) applyMove(values, s.moved, s.plant.sensors);
      // A dead drive instrument reads 0; the machine, and every other reading, runs on.
      const drive = s.driveDeadFor > 0 ? plantDriveSensor(s.plant) : -1;
      if (drive >= 0) values[drive] = 0;
    }
    const timestamp = Math.max(now, s.lastTs + 1);
    prefixes ??= keyPrefixes(s.plant.featureNames);
    let text: string;
    try {
      text = frameBody(values, prefixes, { timestamp, streamId });
    } catch (error) {
      // A reading no frame can carry (an anomaly, perhaps moved on top, past the float32
      // range): end the anomalies in it, or every later frame of the stream would fail too.
      if (!stopped) dropActive(streamId, s);
      throw new RangeError(
        `stream ${streamId} frame ${frameIndex} not generated: ${(error as Error).message}; its anomalies were dropped`,
      );
    }
    if (stopped) s.stoppedFor--;
    else {
      s.last = values;
      if (s.driveDeadFor > 0) s.driveDeadFor--;
    }
    s.lastTs = timestamp;
    if (!stopped) s.lastRunTs = timestamp;
    for (const a of stopped ? [] : injected) {
      if (a.stream_id !== streamId) continue;
      const iso = new Date(timestamp).toISOString();
      if (a.start_frame === frameIndex) a.start_time = iso;
      if (a.start_frame + a.duration - 1 === frameIndex) a.end_time = iso;
    }
    const gzip = await gzipText(text);
    return { streamId, frameIndex, timestamp, gzip };
  }

  /** Ends the anomalies in the frame just made; ground truth keeps the frames that went out. */
  function dropActive(streamId: string, s: Stream) {
    for (const spec of s.plant.dropActive()) {
      const features = spec.features.join();
      const i = injected.findIndex(
        (a) =>
          a.stream_id === streamId &&
          a.start_frame === spec.start &&
          a.kind === spec.kind &&
          a.features.join() === features,
      );
      if (i === -1) continue;
      if (spec.duration === 0) injected.splice(i, 1);
      else {
        injected[i].duration = spec.duration;
        injected[i].end_time = new Date(s.lastRunTs).toISOString();
      }
    }
  }

  /**
   * Schedules an anomaly on a stream from its next frame on; unspecified parts are drawn with
   * the generator's realistic defaults. Returns the recorded ground truth.
   */
  function inject(
    streamId: string,
    spec: Partial<Omit<AnomalySpec, "start">> & { kind?: AnomalyKind; maxDuration?: number },
  ): InjectedAnomaly {
    const { plant } = stream(streamId);
    const drawn = randomAnomaly(rng, plant, {
      kind: spec.kind,
      features: spec.features,
      magnitude: spec.magnitude,
      duration: spec.duration,
    });
    if (spec.maxDuration !== undefined) drawn.duration = Math.min(drawn.duration, spec.maxDuration);
    plant.inject(drawn);
    const record: InjectedAnomaly = {
      stream_id: streamId,
      kind: drawn.kind,
      features: drawn.features,
      feature_names: drawn.features.map((f) => plant.featureNames[f]),
      start_frame: drawn.start,
      duration: drawn.duration,
      magnitude: drawn.magnitude,
      start_time: null,
      end_time: null,
    };
    injected.push(record);
    if (injected.length > historyLimit) injected.shift();
    return record;
  }

  /**
   * Stops a stream's machine for its next `frames` frames: the drive reads 0, the other sensors
   * hold their last readings; then it runs on. With `kind` `"sensor"` the machine runs on and
   * only the drive's instrument reads 0 for those frames (a dead running-condition sensor).
   * Returns the drive's running condition.
   */
  function stop(streamId: string, frames: number, kind: StopKind = "machine") {
    if (!Number.isInteger(frames) || frames < 1) {
      throw new RangeError(`'frames' must be an integer >= 1, got ${frames}`);
    }
    const s = stream(streamId);
    if (kind === "sensor") s.driveDeadFor = frames;
    else s.stoppedFor = frames;
    return plantRunningCondition(s.plant);
  }

  /**
   * Moves a stream's operating point from its next frame on, and it stays there (`moved`
   * false: back to the original one): a fifth of the sensors settle 4 std higher, two are
   * mirrored around their level, one follows another ({@link defaultMove}; the drive is left
   * alone, so the machine still reads as running). Returns the move.
   */
  function moveOperatingPoint(streamId: string, moved: boolean): OperatingPointMove | undefined {
    // Back to where a stream without a plant already is: nothing to make.
    if (!moved && !plants.has(streamId)) return undefined;
    const s = stream(streamId);
    s.moved = moved ? defaultMove(nFeatures, [plantDriveSensor(s.plant)]) : undefined;
    return s.moved;
  }

  return {
    nFeatures,
    next,
    moveOperatingPoint,
    /** Whether a stream runs at a moved operating point. */
    isMoved: (streamId: string): boolean => plants.get(streamId)?.moved !== undefined,
    /** Streams running at a moved operating point, sorted. */
    movedStreams: (): string[] =>
      [...plants]
        .filter(([, s]) => s.moved !== undefined)
        .map(([id]) => id)
        .sort(),
    /** Stream ids with a plant, least recently used first. */
    known: (): string[] => [...plants.keys()],
    /**
     * The current run's streams: never forgotten while it runs (`[]` when none runs). Forgets
     * idle plants past the limit at once.
     */
    keep(streamIds: readonly string[]): void {
      kept = new Set(streamIds);
      forgetIdle();
    },
    inject,
    stop,
    /** The injections recorded so far (oldest first). */
    groundTruth: (): readonly InjectedAnomaly[] => injected,
    /** A random integer in [0, n) from the simulator's own seeded generator. */
    pick: (n: number) => rng.int(n),
  };
}

export type PlantStreams = ReturnType<typeof createPlantStreams>;
