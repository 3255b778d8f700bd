// Which frames join a stream, in timestamp order, and each stream's features.
export {
  type Admission,
  type StreamLimits,
  StreamWindows,
  type StreamWindowsOptions,
} from "./stream_windows.ts";
