// Starts a worker thread on a TypeScript entry, under Node (through tsx) and Deno alike.
import { Worker } from "node:worker_threads";

/**
 * Deno runs the TypeScript entry directly; Node 20 workers do not inherit the parent's module
 * hooks, so there a two-line bootstrap registers tsx first, then imports the entry.
 *
 * @example const worker = spawnWorker(new URL("./_decode_worker.ts", import.meta.url), setup);
 */
export function spawnWorker(entry: URL, workerData: unknown): Worker {
  if ("Deno" in globalThis) return new Worker(entry, { workerData });
  const tsx = JSON.stringify(import.meta.resolve("tsx/esm/api"));
  const href = JSON.stringify(entry.href);
  const bootstrap = `import(${tsx}).then((tsx) => { tsx.register(); return import(${href}); });`;
  return new Worker(bootstrap, { eval: true, workerData });
}
