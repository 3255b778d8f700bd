// CPU, memory and GPU usage of this process, cheap enough to sample on every inference batch.

import { availableParallelism } from "node:os";
import process from "node:process";
import type { Meter } from "@opentelemetry/api";
import { _whichOnPath, GpuReader, type GpuUsage } from "./gpu_reader.ts";

export type { GpuUsage } from "./gpu_reader.ts";

export interface ResourceSample {
  /** Process CPU over the last one to two seconds; 100 = one core busy (like `top`). */
  cpu_percent: number;
  rss_bytes: number;
  heap_used_bytes: number;
  /**
   * The first NVIDIA GPU, as last read (refreshed in the background about once a second); absent
   * without a GPU, and while `nvidia-smi` fails or does not answer within two seconds.
   */
  gpu?: GpuUsage;
}

const CPU_WINDOW_MS = 1000;

interface CpuMark {
  at: number;
  micros: number;
}

const now = () => performance.now();
const cpuMicros = () => {
  const { user, system } = process.cpuUsage();
  return user + system;
};

// Two marks at least a second apart give a stable CPU figure however often callers sample.
// The first reference is the process start, so the first sample is the average so far.
let older: CpuMark = { at: now() - process.uptime() * 1000, micros: 0 };
let newer: CpuMark = older;

let gpu: GpuReader | undefined;
const gpuReader = () => {
  gpu ??= new GpuReader();
  return gpu;
};

/** Whether an executable `name` is on `pathEnv` (`PATH`); a few file checks, no process spawned. */
export function _isOnPath(name: string, pathEnv: string | undefined): boolean {
  return _whichOnPath(name, pathEnv) !== undefined;
}

/** True when an NVIDIA GPU can be read; decided once, by looking for `nvidia-smi` on `PATH`. */
export function hasGpu(): boolean {
  return gpuReader().present;
}

/** Resolves once a GPU reading is available (or none can be), e.g. before a first log line. */
export function readGpu(): Promise<GpuUsage | undefined> {
  return gpuReader().read();
}

/**
 * Samples this process: CPU, RSS, V8 heap, and the cached GPU reading. Costs two syscalls and
 * no allocation beyond the result, so it can be called per inference batch.
 *
 * @example log.info("batch scored", { ...fields, resources: sampleResources() });
 */
export function sampleResources(): ResourceSample {
  const mark: CpuMark = { at: now(), micros: cpuMicros() };
  if (mark.at - newer.at >= CPU_WINDOW_MS) {
    older = newer;
    newer = mark;
  }
  const elapsedMs = mark.at - older.at;
  const cpu = elapsedMs > 0 ? (mark.micros - older.micros) / 10 / elapsedMs : 0;
  const memory = process.memoryUsage();
  const sample: ResourceSample = {
    cpu_percent: Math.round(cpu * 10) / 10,
    rss_bytes: memory.rss,
    heap_used_bytes: memory.heapUsed,
  };
  // Never waits on `nvidia-smi`: the reading is refreshed in the background (gpu_reader.ts).
  const reading = gpuReader().latest();
  if (reading) sample.gpu = reading;
  return sample;
}

/**
 * Registers observable gauges read at each metric export: `process.cpu.utilization` (ratio of
 * all cores, as the semantic conventions define it), `process.memory.usage` (RSS, bytes),
 * `gpu.utilization` (ratio) and `gpu.memory.used` (bytes). The GPU gauges observe nothing
 * when there is no GPU.
 */
export function registerResourceMetrics(meter: Meter): void {
  const cores = availableParallelism();
  const cpu = meter.createObservableGauge("process.cpu.utilization", {
    unit: "1",
    description: "Process CPU time over wall time, divided by the number of cores",
  });
  const memory = meter.createObservableGauge("process.memory.usage", {
    unit: "By",
    description: "Resident set size of the process",
  });
  const gpuUtil = meter.createObservableGauge("gpu.utilization", {
    unit: "1",
    description: "GPU busy ratio (first NVIDIA GPU)",
  });
  const gpuMemory = meter.createObservableGauge("gpu.memory.used", {
    unit: "By",
    description: "GPU memory in use (first NVIDIA GPU)",
  });
  meter.addBatchObservableCallback(
    function observeResources(result) {
      const sample = sampleResources();
      result.observe(cpu, sample.cpu_percent / 100 / cores);
      result.observe(memory, sample.rss_bytes);
      if (sample.gpu) {
        result.observe(gpuUtil, sample.gpu.utilisation_percent / 100);
        result.observe(gpuMemory, sample.gpu.memory_used_bytes);
      }
    },
    [cpu, memory, gpuUtil, gpuMemory],
  );
}
