// A process's local copies of the shared registry's versions: downloaded whole, verified, then renamed into place.
import { randomBytes } from "node:crypto";
import { mkdir, open, readdir, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { ModelMetadata } from "../../contracts/model.ts";
import type { NatsModelRegistry } from "./nats_registry.ts";
import { type VersionRef, verifyVersion } from "./registry.ts";

async function writeSynced(path: string, data: Uint8Array): Promise<void> {
  const handle = await open(path, "w");
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

/**
 * A download folder older than this is one a process left when it died: clean() removes it. A
 * live download is younger (its folder is made when it starts and changes with every file
 * written into it); should one take longer, `ensure` starts it again once.
 */
export const STALE_DOWNLOAD_MS = 10 * 60_000;

/** A download whose folder was removed under it (another process took it for a dead one's). */
class DownloadVanished extends Error {
  override name = "DownloadVanished";
}

/**
 * `dir/<name>/<version>/` holds a version as the on-disk registry lays it out, so
 * `loadModel({ dir, name })` loads it. A version is downloaded into a dot-folder, fsync'd,
 * verified (metadata names it, the graph's sha256 is the metadata's) and only then renamed into
 * place: a download cut short leaves a dot-folder that is never loaded (and is removed by a later
 * {@link VersionCache.clean} once it is stale). A copy already there is verified again before each
 * use. Several processes may share `dir` (scale-out workers on one DATA_DIR volume).
 */
export class VersionCache {
  readonly dir: string;
  readonly #registry: NatsModelRegistry;

  constructor(dir: string, registry: NatsModelRegistry) {
    this.dir = dir;
    this.#registry = registry;
  }

  /**
   * Removes downloads that did not finish (dot-folders) left by a process that died: only those
   * not changed for {@link STALE_DOWNLOAD_MS}, so another process's download in progress in a
   * shared `dir` goes on.
   */
  async clean(): Promise<void> {
    const now = Date.now();
    for (const model of await readdir(this.dir, { withFileTypes: true }).catch(() => [])) {
      if (!model.isDirectory()) continue;
      for (const entry of await readdir(join(this.dir, model.name)).catch(() => [])) {
        if (!entry.startsWith(".")) continue;
        const path = join(this.dir, model.name, entry);
        const changed = await stat(path).then(
          (s) => s.mtimeMs,
          () => now,
        );
        if (now - changed >= STALE_DOWNLOAD_MS) await rm(path, { recursive: true, force: true });
      }
    }
  }

  /**
   * The local copy of `name@version`, downloaded first when missing or not intact. A download
   * whose folder vanished under it (taken for a dead one by another process) starts again, once.
   */
  async ensure(name: string, version: string): Promise<{ ref: VersionRef; meta: ModelMetadata }> {
    const folder = join(this.dir, name);
    const final = join(folder, version);
    const ref: VersionRef = { name, version, dir: final, layout: "registry" };
    if (await exists(final)) {
      const meta = await verifyVersion(ref).catch(() => undefined);
      if (meta) return { ref, meta };
      // A copy that no longer verifies (a disk fault): fetched again.
      await rm(final, { recursive: true, force: true });
    }
    try {
      return await this.#download(ref);
    } catch (error) {
      if (!(error instanceof DownloadVanished)) throw error;
      return await this.#download(ref);
    }
  }

  async #download(ref: VersionRef): Promise<{ ref: VersionRef; meta: ModelMetadata }> {
    const { name, version, dir: final } = ref;
    const folder = join(this.dir, name);
    await mkdir(folder, { recursive: true });
    const tmp = join(folder, `.download-${version}-${randomBytes(4).toString("hex")}`);
    await mkdir(tmp);
    try {
      await writeSynced(
        join(tmp, `${name}.onnx`),
        await this.#registry.read(name, version, "onnx"),
      );
      await writeSynced(
        join(tmp, `${name}.json`),
        await this.#registry.read(name, version, "json"),
      );
      const meta = await verifyVersion({ ...ref, dir: tmp });
      try {
        await rename(tmp, final);
      } catch (error) {
        // Another process sharing the folder placed the same version first.
        const theirs = await verifyVersion(ref).catch(() => undefined);
        if (!theirs) throw error;
        await rm(tmp, { recursive: true, force: true });
      }
      return { ref, meta };
    } catch (error) {
      if (!(await exists(tmp))) {
        throw new DownloadVanished(`the download of ${name}@${version} into ${tmp} was removed`, {
          cause: error,
        });
      }
      await rm(tmp, { recursive: true, force: true });
      throw error;
    }
  }
}
