// Copies the flat models of a folder (the repository's models/) into an on-disk registry, so a demo can retrain and activate versions without touching the repository.
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { parseModelMetadata } from "../../contracts/model.ts";
import { ModelRegistry } from "./registry.ts";

/** Who the seeded activations name: a version activated by anyone else is left active. */
export const SEED_BY = "seed";

/** What seeding did to one model. */
export interface SeededModel {
  name: string;
  version: string;
  /** The version was new to the registry. */
  written: boolean;
  /** It is now the active version. */
  active: boolean;
}

/**
 * Writes each flat model of `from` (`NAME.onnx` + `NAME.json`) into the registry at `to` as a
 * version. The seeded version is activated when the model has no active version yet or when the
 * active one was itself seeded (a newer committed model replaces an older one); a version someone
 * activated (a promoted retraining, an admin's rollback) stays active. Idempotent: an existing
 * version is not written again.
 *
 * @example await seedRegistry("models", ".data/engine/models");
 */
export async function seedRegistry(from: string, to: string): Promise<SeededModel[]> {
  const registry = new ModelRegistry(to);
  const names = (await readdir(from))
    .filter((f) => f.endsWith(".onnx"))
    .map((f) => f.slice(0, -".onnx".length))
    .sort();
  const seeded: SeededModel[] = [];
  for (const name of names) {
    const json = await readFile(join(from, `${name}.json`), "utf8").catch(() => undefined);
    if (json === undefined) continue;
    const meta = parseModelMetadata(JSON.parse(json));
    const known = await registry.model(name).catch(() => undefined);
    const has = known?.versions.includes(meta.version) ?? false;
    const current = (await registry.activations(name).catch(() => [])).at(-1);
    const activate = known?.active === undefined || current?.by === SEED_BY;
    if (!has || (activate && known?.active !== meta.version)) {
      const onnx = new Uint8Array(await readFile(join(from, `${name}.onnx`)));
      await registry.write(onnx, meta, {
        activate,
        by: SEED_BY,
        reason: `the model committed in ${from}`,
      });
    }
    seeded.push({
      name,
      version: meta.version,
      written: !has,
      active: activate || known?.active === meta.version,
    });
  }
  return seeded;
}
