// How a service process is started on Node. npm scripts, start.ts, the container, the benchmark
// and the tests all start services this way (a test checks package.json and the Dockerfile).

/**
 * `run_ts.mjs` compiles the TypeScript entry once instead of keeping a compiler thread (see that
 * file). `--max-semi-space-size=4` caps V8's young generation at 3 x 4 MB: under a full ingest
 * load the request thread otherwise grows it to ~50 MB for no measurable throughput.
 */
export const NODE_SERVICE_ARGS = ["--max-semi-space-size=4", "run_ts.mjs"] as const;

/**
 * glibc gives each thread that allocates its own malloc arena, and the engine has a dozen
 * (request thread, decode workers, inference worker, ONNX Runtime's pool, V8's helpers). Freed
 * frame buffers stay cached in each of them: two arenas keep ~30 MB less resident, measured at
 * no throughput cost. Ignored by other allocators (macOS, musl). A value already set wins.
 */
export function nodeServiceEnv(env: Record<string, string | undefined>): Record<string, string> {
  return { MALLOC_ARENA_MAX: env.MALLOC_ARENA_MAX ?? "2" };
}
