// Runs a TypeScript entry on Node without a module-hooks thread: `node run_ts.mjs engine/main.ts`.
//
// `node --import tsx FILE` compiles each module as it loads, from a hooks thread that Node 20
// keeps for the life of the process: ~35 MB of resident memory (a second V8 isolate holding the
// compiler) for a service that stopped loading modules after its first second. Instead this
// compiles the entry and the project modules it imports, once, with esbuild (the compiler tsx
// uses), into one ES module under node_modules/.cache, and imports that. Packages stay ordinary
// imports, resolved from node_modules as usual; `import.meta.url` keeps naming each source file,
// so paths built from it (worker entries, migrations) still point into the project. If compiling
// or writing the cache fails, it says so on stderr and registers tsx in this process instead.

import { createHash } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const entry = process.argv[2];
if (!entry) {
  console.error("usage: node run_ts.mjs FILE.ts [args...]");
  process.exit(2);
}
const entryPath = resolve(entry);
// The entry sees the argv it would see under `node --import tsx FILE args...`.
process.argv.splice(1, 2, entryPath);

async function compile() {
  const { build, stop } = await import("esbuild");
  const result = await build({
    entryPoints: [entryPath],
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node20",
    packages: "external",
    sourcemap: "inline",
    sourcesContent: false,
    keepNames: true,
    write: false,
    logLevel: "silent",
    plugins: [
      {
        name: "source-import-meta-url",
        setup(b) {
          // .tsx: the console's pages (Hono JSX; esbuild takes jsxImportSource from tsconfig.json).
          b.onLoad({ filter: /\.[cm]?tsx?$/ }, (args) => ({
            loader: args.path.endsWith("x") ? "tsx" : "ts",
            contents: readFileSync(args.path, "utf8").replaceAll(
              "import.meta.url",
              JSON.stringify(pathToFileURL(args.path).href),
            ),
          }));
        },
      },
    ],
  });
  // esbuild keeps a compiler service running for further builds; there will be none.
  await stop();
  const code = result.outputFiles[0].text;
  const hash = createHash("sha256").update(code).digest("hex").slice(0, 16);
  const dir = join(dirname(fileURLToPath(import.meta.url)), "node_modules", ".cache", "run_ts");
  const file = join(dir, `${entry.replace(/[^\w.-]+/g, "_")}.${hash}.mjs`);
  if (existsSync(file)) return file;
  mkdirSync(dir, { recursive: true });
  // Written under a unique name, then renamed: concurrent starts never see a partial file.
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, code);
  renameSync(temp, file);
  // Older compilations of this entry (the sources changed since) are removed after a day.
  const prefix = basename(file).replace(/\.[0-9a-f]{16}\.mjs$/, ".");
  for (const name of readdirSync(dir)) {
    const other = join(dir, name);
    if (name.startsWith(prefix) && other !== file && Date.now() - statSync(other).mtimeMs > 864e5) {
      rmSync(other, { force: true });
    }
  }
  return file;
}

let compiled;
try {
  compiled = await compile();
} catch (error) {
  console.error(
    `run_ts: cannot compile ${entry} (${error?.message ?? error}); running it through tsx`,
  );
}
if (compiled) {
  process.setSourceMapsEnabled(true);
  await import(pathToFileURL(compiled).href);
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import(pathToFileURL(entryPath).href);
}
