// A run's plan for the stream mode, and the checks it must pass against the plant before it starts.
import { SIMULATOR_MAX_SENSORS } from "../../contracts/config.ts";
import type { AnomalyKind } from "../../models/signal/mod.ts";
import type { StopKind } from "./plant_streams.ts";

/**
 * Largest |magnitude| a planned anomaly may have, in the sensor's standard deviations: far past
 * any fault worth detecting (the generator's own reach 12), and far from the float32 range a
 * frame carries (a 1e300 one read as Infinity and stopped the run).
 */
export const MAX_ANOMALY_MAGNITUDE = 1000;

/**
 * Most sensors a run's plants may hold together (streams × features). A plant keeps its sensor
 * table and state, measured at about 4.1 MB of heap and buffers for 25,000 sensors (165 bytes a
 * sensor; 6.5 MB of RSS): 1,000,000 is 40 such plants, about 165 MB, which keeps the backend well
 * under 1 GB with its 16 idle plants. It is more than one core can make frames for at 1 Hz
 * anyway (about 50 ms per 25,000-sensor frame), so a bigger run would only fall behind. Without
 * it, 1000 streams of 25,000 sensors asked for 4 GB.
 */
export const MAX_STREAM_SENSORS = SIMULATOR_MAX_SENSORS;

/** The run's streams as a message names them. */
function namedStreams(streams: number): string {
  return streams === 1 ? '"default"' : `"plant-0".."plant-${streams - 1}"`;
}

/**
 * Throws a `RangeError` naming `what` unless `streamId` is one of a run of `streams` streams'.
 *
 * @example checkRunStream(2, "default", "'stream_id'") // throws: must be one of "plant-0".."plant-1"
 */
export function checkRunStream(streams: number, streamId: string, what: string): void {
  // As streamIds(streams) names them, without making the list for each of 10,000 plan entries.
  const n = /^plant-(0|[1-9][0-9]*)$/.exec(streamId)?.[1];
  if (streams === 1 ? streamId === "default" : n !== undefined && Number(n) < streams) return;
  throw new RangeError(
    `${what} must be one of the run's streams (${namedStreams(streams)}), got ${JSON.stringify(streamId)}`,
  );
}

/** An anomaly the plan places at a given frame of the run (0 = the run's first frame). */
export interface PlannedAnomaly {
  at_frame: number;
  stream_id?: string;
  kind?: AnomalyKind;
  features?: number[];
  duration?: number;
  magnitude?: number;
}

/** A planned move of a stream's operating point (`moved: false` moves it back). */
export interface PlannedMove {
  at_frame: number;
  stream_id?: string;
  moved?: boolean;
}

/** A planned machine stop (the plant's drive reads 0, then it runs on). */
export interface PlannedStop {
  at_frame: number;
  stream_id?: string;
  duration: number;
  /** `"machine"` (the default): the machine stops; `"sensor"`: only the drive's instrument reads 0. */
  kind?: StopKind;
}

export interface StreamPlan {
  /** Frames per second per stream. */
  rate_hz: number;
  /** Seconds to run; absent = until stopped. */
  duration_s?: number;
  streams: number;
  /** A random anomaly about this often (first after half a period); 0 = none. */
  anomaly_every_s: number;
  /** Kinds random anomalies are drawn from (default: all). */
  kinds?: AnomalyKind[];
  /** Explicit anomalies, besides the random ones. */
  anomalies?: PlannedAnomaly[];
  /** Machine stops: from frame `at_frame` of the run, `duration` frames of a stopped machine. */
  stops?: PlannedStop[];
  /** The operating point moves (or moves back) from frame `at_frame` of the run and stays. */
  moves?: PlannedMove[];
}

/**
 * Throws a `RangeError` quoting the entry when `plan` cannot run on a plant of `nFeatures`
 * sensors: more sensors than `maxSensors` ({@link MAX_STREAM_SENSORS}) over its streams, a
 * feature it lacks, a magnitude past {@link MAX_ANOMALY_MAGNITUDE}, or a stream that is not one
 * of the run's (`"default"`, or `plant-0`… for several), which would only make a plant that no
 * frame of the run reads.
 *
 * @example checkPlan({ rate_hz: 1, streams: 2, anomaly_every_s: 0, stops: [{ at_frame: 5, stream_id: "plant-1", duration: 3 }] }, 25_000)
 */
export function checkPlan(
  plan: StreamPlan,
  nFeatures: number,
  maxSensors: number = MAX_STREAM_SENSORS,
): void {
  if (!(plan.rate_hz > 0)) throw new RangeError(`'rate_hz' must be > 0, got ${plan.rate_hz}`);
  if (!(plan.streams * nFeatures <= maxSensors)) {
    throw new RangeError(
      `'streams' × ${nFeatures} features must be at most ${maxSensors} sensors (the simulator's memory budget), got ${plan.streams} × ${nFeatures} = ${plan.streams * nFeatures}: at most ${Math.max(0, Math.floor(maxSensors / nFeatures))} streams`,
    );
  }
  const entries = { anomalies: plan.anomalies, stops: plan.stops, moves: plan.moves };
  for (const [list, planned] of Object.entries(entries)) {
    planned?.forEach((entry, i) => {
      if (entry.stream_id === undefined) return;
      checkRunStream(plan.streams, entry.stream_id, `'${list}[${i}].stream_id'`);
    });
  }
  for (const a of plan.anomalies ?? []) {
    const bad = a.features?.find((f) => !(f >= 0 && f < nFeatures));
    if (bad !== undefined) {
      throw new RangeError(`'features' must be 0..${nFeatures - 1}, got ${bad}`);
    }
    if (a.magnitude !== undefined && !(Math.abs(a.magnitude) <= MAX_ANOMALY_MAGNITUDE)) {
      throw new RangeError(
        `'magnitude' must be -${MAX_ANOMALY_MAGNITUDE}..${MAX_ANOMALY_MAGNITUDE} (sensor std), got ${a.magnitude}`,
      );
    }
  }
}
