// Starts a worker thread on a TypeScript entry, under Node and Deno alike.
import { isBuiltin } from "node:module";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { buildSync, stop } from "esbuild";

/**
 * Deno runs the TypeScript entry directly. Node 20 cannot: its workers do not inherit the
 * parent's tsx hooks, and registering tsx in a worker starts a second module-hooks thread with
 * its own copy of the compiler, ~20 MB per worker measured. So under Node the entry and our
 * modules it imports are compiled once, in memory, into one ES module (esbuild, the compiler tsx
 * itself uses), packages stay external imports resolved to absolute URLs from here, and the
 * worker imports that module from a `data:` URL. A worker then costs ~10 MB, as a plain
 * JavaScript worker does. If compiling fails the worker falls back to registering tsx.
 *
 * @example const worker = spawnWorker(new URL("./_decode_worker.ts", import.meta.url), setup);
 */
export function spawnWorker(entry: URL, workerData: unknown): Worker {
  if ("Deno" in globalThis) return new Worker(entry, { workerData });
  const compiled = compiledEntry(entry);
  const bootstrap = compiled
    ? `import(${JSON.stringify(compiled)});`
    : `import(${JSON.stringify(import.meta.resolve("tsx/esm/api"))}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(bootstrap, { eval: true, workerData });
}

const compiledEntries = new Map<string, string | undefined>();

/** The entry bundled into a `data:` URL module, or undefined when it cannot be compiled here. */
function compiledEntry(entry: URL): string | undefined {
  if (compiledEntries.has(entry.href)) return compiledEntries.get(entry.href);
  let url: string | undefined;
  try {
    const result = buildSync({
      entryPoints: [fileURLToPath(entry)],
      bundle: true,
      format: "esm",
      platform: "node",
      target: "node20",
      packages: "external",
      write: false,
      metafile: true,
      logLevel: "silent",
    });
    const externals = new Set<string>();
    for (const input of Object.values(result.metafile.inputs)) {
      for (const imported of input.imports) {
        if (imported.external && !isBuiltin(imported.path)) externals.add(imported.path);
      }
    }
    // A data: module resolves only builtins and absolute URLs, so every package import is
    // rewritten to the URL it resolves to from this project.
    const code = result.outputFiles[0].text.replace(
      /(\bfrom\s*|\bimport\s*\(?\s*)"([^"]+)"/g,
      (whole, lead: string, specifier: string) =>
        externals.has(specifier)
          ? `${lead}${JSON.stringify(import.meta.resolve(specifier))}`
          : whole,
    );
    url = `data:text/javascript;base64,${Buffer.from(code).toString("base64")}`;
  } catch {
    url = undefined;
  } finally {
    // buildSync keeps a compiler thread for further builds: ~10 MB, freed here.
    void stop();
  }
  compiledEntries.set(entry.href, url);
  return url;
}
