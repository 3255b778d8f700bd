// What the training history's size on disk means for one stream: per day at a rate, and how long HISTORY_MAX_BYTES lasts.
import { round } from "./micro.ts";

export interface HistorySize {
  bytes_per_frame: number;
  /** Of every `every_n` runs of `run_frames` frames, one is kept (`HISTORY_EVERY_N`, `HISTORY_RUN_FRAMES`). */
  every_n: number;
  run_frames: number;
  rate_hz: number;
  frames_per_stream_day: number;
  gib_per_stream_day: number;
  max_bytes: number;
  /** How long `HISTORY_MAX_BYTES` holds one stream's history before the oldest chunks are dropped. */
  days_held_one_stream: number;
  hours_held_one_stream: number;
}

/**
 * Projects a measured record size onto a day of one stream at `rateHz`, decimated as the
 * recorder decimates (one run of `runFrames` in every `everyN`), against `maxBytes`.
 *
 * @example historySize({ bytesPerFrame: 100_060, everyN: 1, runFrames: 300, maxBytes: 2 ** 30, rateHz: 1 })
 */
export function historySize(o: {
  bytesPerFrame: number;
  everyN: number;
  runFrames: number;
  maxBytes: number;
  rateHz: number;
}): HistorySize {
  for (const [name, value] of Object.entries(o)) {
    if (!(value > 0) || !Number.isFinite(value)) {
      throw new RangeError(`'${name}' must be a positive number, got ${value}`);
    }
  }
  const framesPerDay = (86_400 * o.rateHz) / o.everyN;
  const bytesPerDay = framesPerDay * o.bytesPerFrame;
  const days = o.maxBytes / bytesPerDay;
  return {
    bytes_per_frame: round(o.bytesPerFrame, 1),
    every_n: o.everyN,
    run_frames: o.runFrames,
    rate_hz: o.rateHz,
    frames_per_stream_day: round(framesPerDay, 1),
    gib_per_stream_day: round(bytesPerDay / 2 ** 30, 3),
    max_bytes: o.maxBytes,
    days_held_one_stream: round(days, 4),
    hours_held_one_stream: round(days * 24, 2),
  };
}
