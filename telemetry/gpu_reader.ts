// Reads the first NVIDIA GPU's utilisation and memory through `nvidia-smi`, never blocking the event loop.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { delimiter, join } from "node:path";
import process from "node:process";

export interface GpuUsage {
  utilisation_percent: number;
  memory_used_bytes: number;
  memory_total_bytes: number;
}

export interface GpuReaderOptions {
  /** Folders searched for `nvidia-smi`, as `PATH` lists them (default `process.env.PATH`). */
  pathEnv?: string;
  /** Longest wait for `nvidia-smi`'s answer before it is killed and the reading dropped (ms). */
  timeoutMs?: number;
  /** A reading younger than this is not refreshed (ms). */
  refreshMs?: number;
  /** The wait after a first failed reading, doubled on each further failure (ms)... */
  retryMs?: number;
  /** ...up to this (ms), so a hung driver costs one stuck `nvidia-smi` every few minutes at most. */
  maxRetryMs?: number;
  /** Milliseconds on a monotonic clock (default `performance.now`). */
  now?: () => number;
}

const MIB = 1024 * 1024;
const QUERY = [
  "--query-gpu=utilization.gpu,memory.used,memory.total",
  "--format=csv,noheader,nounits",
];

/** Where an executable `name` is on `pathEnv` (`PATH`); a few file checks, no process spawned. */
export function _whichOnPath(name: string, pathEnv: string | undefined): string | undefined {
  const suffixes = process.platform === "win32" ? [".exe", ""] : [""];
  for (const dir of (pathEnv ?? "").split(delimiter)) {
    if (!dir) continue;
    for (const suffix of suffixes) {
      const file = join(dir, name + suffix);
      if (existsSync(file)) return file;
    }
  }
  return undefined;
}

/**
 * The first GPU of `nvidia-smi --query-gpu=utilization.gpu,memory.used,memory.total
 * --format=csv,noheader,nounits` (one `37, 1234, 81559` line per GPU, memory in MiB). A GPU that
 * does not report its utilisation (`[N/A]`, e.g. under MIG) reads 0 %; no memory total, no reading.
 */
export function _parseGpuQuery(text: string): GpuUsage | undefined {
  const first = text.split(/\r?\n/).find((line) => line.trim() !== "");
  if (!first) return undefined;
  const [utilisation, used, total] = first.split(",").map((field) => Number(field.trim()));
  if (!(total > 0)) return undefined;
  return {
    utilisation_percent: Number.isFinite(utilisation) ? utilisation : 0,
    memory_used_bytes: (Number.isFinite(used) ? used : 0) * MIB,
    memory_total_bytes: total * MIB,
  };
}

/**
 * Keeps a recent reading of the first NVIDIA GPU. `latest()` never waits: it starts a refresh in
 * the background when the reading is older than `refreshMs`, running `nvidia-smi` asynchronously
 * and killing it after `timeoutMs`. A failed or timed-out refresh drops the reading (a stale one
 * would read as current) and the next try waits `retryMs`, doubling up to `maxRetryMs`.
 *
 * @example
 * const gpu = new GpuReader();
 * if (gpu.present) log.info("gpu", { gpu: await gpu.read() });
 */
export class GpuReader {
  /** Whether `nvidia-smi` is on the path; decided once, at construction. */
  readonly present: boolean;
  readonly #command: string | undefined;
  readonly #timeoutMs: number;
  readonly #refreshMs: number;
  readonly #retryMs: number;
  readonly #maxRetryMs: number;
  readonly #now: () => number;
  #last: GpuUsage | undefined;
  #nextAt = Number.NEGATIVE_INFINITY;
  #failures = 0;
  #reading: Promise<void> | undefined;

  constructor(options: GpuReaderOptions = {}) {
    this.#command = _whichOnPath("nvidia-smi", options.pathEnv ?? process.env.PATH);
    this.present = this.#command !== undefined;
    this.#timeoutMs = options.timeoutMs ?? 2000;
    this.#refreshMs = options.refreshMs ?? 1000;
    this.#retryMs = options.retryMs ?? 10_000;
    this.#maxRetryMs = options.maxRetryMs ?? 300_000;
    this.#now = options.now ?? (() => performance.now());
  }

  /** The last good reading, absent before the first or after a failed refresh; never waits. */
  latest(): GpuUsage | undefined {
    this.#refresh();
    return this.#last ? { ...this.#last } : undefined;
  }

  /** Resolves once a refresh due now has ended, with the reading it left (if any). */
  async read(): Promise<GpuUsage | undefined> {
    this.#refresh();
    await this.#reading;
    return this.#last ? { ...this.#last } : undefined;
  }

  #refresh(): void {
    const command = this.#command;
    if (command === undefined || this.#reading || this.#now() < this.#nextAt) return;
    const started = this.#now();
    this.#reading = new Promise<void>((resolve) => {
      execFile(
        command,
        QUERY,
        {
          signal: AbortSignal.timeout(this.#timeoutMs),
          killSignal: "SIGKILL",
          windowsHide: true,
          maxBuffer: 64 * 1024,
        },
        (error, stdout) => {
          const reading = error ? undefined : _parseGpuQuery(String(stdout));
          this.#last = reading;
          if (reading) {
            this.#failures = 0;
            this.#nextAt = started + this.#refreshMs;
          } else {
            // A driver hiccup, a hung `nvidia-smi` or output we cannot read: try again later,
            // not on every sample.
            const wait = this.#retryMs * 2 ** Math.min(this.#failures, 30);
            this.#failures++;
            this.#nextAt = this.#now() + Math.min(wait, this.#maxRetryMs);
          }
          this.#reading = undefined;
          resolve();
        },
      );
    });
  }
}
