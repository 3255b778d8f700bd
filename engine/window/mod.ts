// Sliding windows per stream, in timestamp order.
export { type Admission, StreamWindows, type StreamWindowsOptions } from "./stream_windows.ts";
