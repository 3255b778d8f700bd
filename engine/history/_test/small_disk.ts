// A disk of a given size for a history folder: writes past it are cut short or fail with ENOSPC, as a full disk does.
import { readdirSync, statSync } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { join } from "node:path";

const enospc = () =>
  Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });

/**
 * A disk of `capacity` bytes (changeable, as when something else frees space) for the files in
 * `dir`, index.json too. `fs` is what a `ChunkWriter` takes: an `open` whose writes that do not
 * fit write what does and say how much, and fail with `ENOSPC` when nothing fits; a `statfs`
 * that tells the free bytes. Deleting a file frees its bytes, as on a disk.
 */
export class SmallDisk {
  capacity: number;
  readonly #dir: string;

  constructor(dir: string, capacity: number) {
    this.#dir = dir;
    this.capacity = capacity;
  }

  get free(): number {
    const used = readdirSync(this.#dir).reduce(
      (n, name) => n + statSync(join(this.#dir, name)).size,
      0,
    );
    return Math.max(0, this.capacity - used);
  }

  readonly fs = {
    open: async (path: string, flags: string): Promise<FileHandle> => {
      const handle = await open(path, flags);
      const writeWhatFits = async (buffers: readonly Uint8Array[]) => {
        const all = Buffer.concat(buffers);
        const fits = Math.min(all.length, this.free);
        if (fits === 0 && all.length > 0) throw enospc();
        return handle.write(all.subarray(0, fits));
      };
      return new Proxy(handle, {
        get(target, property) {
          if (property === "writev") {
            return async (buffers: Uint8Array[]) => ({
              bytesWritten: (await writeWhatFits(buffers)).bytesWritten,
              buffers,
            });
          }
          if (property === "write") {
            return async (buffer: Uint8Array) => ({
              bytesWritten: (await writeWhatFits([buffer])).bytesWritten,
              buffer,
            });
          }
          const value = Reflect.get(target, property, target);
          return typeof value === "function" ? value.bind(target) : value;
        },
      });
    },
    statfs: async (_dir: string) => ({ bavail: this.free, bsize: 1 }),
  };
}

/** Bytes of the chunk files in `dir`. */
export const chunkBytesIn = (dir: string) =>
  readdirSync(dir)
    .filter((name) => name.endsWith(".chunk"))
    .reduce((n, name) => n + statSync(join(dir, name)).size, 0);
