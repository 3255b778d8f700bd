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
 * `dir/<name>/<version>/` holds a version as the on-disk registry lays it out, so
 * `loadModel({ dir, name })` loads it. A version is downloaded into a dot-folder, fsync'd,
 * verified (metadata names it, the graph's sha256 is the metadata's) and only then renamed into
 * place: a download cut short leaves a dot-folder that is never loaded (and is removed at the
 * next {@link VersionCache.clean}). A copy already there is verified again before each use.
 */
export class VersionCache {
  readonly dir: string;
  readonly #registry: NatsModelRegistry;

  constructor(dir: string, registry: NatsModelRegistry) {
    this.dir = dir;
    this.#registry = registry;
  }

  /** Removes downloads that did not finish (dot-folders), left by a process that died. */
  async clean(): Promise<void> {
    for (const model of await readdir(this.dir, { withFileTypes: true }).catch(() => [])) {
      if (!model.isDirectory()) continue;
      for (const entry of await readdir(join(this.dir, model.name)).catch(() => [])) {
        if (entry.startsWith(".")) {
          await rm(join(this.dir, model.name, entry), { recursive: true, force: true });
        }
      }
    }
  }

  /** The local copy of `name@version`, downloaded first when missing or not intact. */
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
      await rm(tmp, { recursive: true, force: true });
      throw error;
    }
  }
}
