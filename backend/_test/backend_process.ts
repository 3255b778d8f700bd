// Test helper: a backend process on a free port of 127.0.0.1, with the embedded database in memory and the simulator off.
import { NODE_TS, type ServiceProcess, spawnService } from "./spawn_service.ts";

export interface BackendProcess {
  service: ServiceProcess;
  /** `http://127.0.0.1:PORT`. */
  base: string;
}

/**
 * Starts `backend/main.ts` under Node and resolves once it logs `backend listening`. `env` adds to
 * (or overrides) the defaults: `HOST=127.0.0.1`, `PORT=0` (the port it logs), `DATABASE_URL`
 * empty (PGlite, in memory), `SIMULATOR_RATE_HZ=0`.
 */
export async function startBackend(env: Record<string, string> = {}): Promise<BackendProcess> {
  const service = spawnService([...NODE_TS, "backend/main.ts"], {
    HOST: "127.0.0.1",
    // Port 0: the backend binds one the system gives and logs it. A port found free beforehand
    // (bind, close, reuse) could be taken by another test's process in between.
    PORT: "0",
    DATABASE_URL: "",
    SIMULATOR_RATE_HZ: "0",
    ...env,
  });
  const listening = await service.waitForLog((l) => l.msg === "backend listening", 60_000);
  return { service, base: `http://127.0.0.1:${listening.port}` };
}
