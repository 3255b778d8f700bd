// The console's static files: its own script and styles, and uPlot's, read once from disk.
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";

/** Name in the URL → where the file is and its content type. */
function assetFiles(): Record<string, { path: string | URL; type: string }> {
  // Resolved like an import, so it works wherever the package manager put uplot (Node and Deno).
  const require = createRequire(import.meta.url);
  return {
    "console.js": {
      path: new URL("./assets/console.js", import.meta.url),
      type: "text/javascript",
    },
    "console.css": { path: new URL("./assets/console.css", import.meta.url), type: "text/css" },
    "uPlot.iife.min.js": {
      path: require.resolve("uplot/dist/uPlot.iife.min.js"),
      type: "text/javascript",
    },
    "uPlot.min.css": { path: require.resolve("uplot/dist/uPlot.min.css"), type: "text/css" },
  };
}

export interface StaticAsset {
  body: Uint8Array<ArrayBuffer>;
  type: string;
  etag: string;
}

/**
 * Loads every asset into memory (together well under 100 KB) so serving one is a lookup.
 *
 * @example const assets = await loadStaticAssets(); assets.get("console.js")?.type; // "text/javascript"
 */
export async function loadStaticAssets(): Promise<Map<string, StaticAsset>> {
  const out = new Map<string, StaticAsset>();
  for (const [name, { path, type }] of Object.entries(assetFiles())) {
    const body = new Uint8Array(await readFile(path));
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", body));
    const etag = `"${Array.from(digest.subarray(0, 8), (b) => b.toString(16).padStart(2, "0")).join("")}"`;
    out.set(name, { body, type: `${type}; charset=utf-8`, etag });
  }
  return out;
}
