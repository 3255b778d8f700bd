// Test helper: a backend process on a free port of 127.0.0.1, with the embedded database in memory and the simulator off.
import { freePort } from "./free_port.ts";
import { NODE_TS, type ServiceProcess, spawnService } from "./spawn_service.ts";

export interface BackendProcess {
  service: ServiceProcess;
  /** `http://127.0.0.1:PORT`. */
  base: string;
}

/**
 * Starts `backend/main.ts` under Node and resolves once it logs `backend listening`. `env` adds to
 * (or overrides) the defaults: `HOST=127.0.0.1`, a free `PORT`, `DATABASE_URL` empty (PGlite,
 * in memory), `SIMULATOR_RATE_HZ=0`.
 */
export async function startBackend(env: Record<string, string> = {}): Promise<BackendProcess> {
  const port = await freePort();
  const service = spawnService([...NODE_TS, "backend/main.ts"], {
    HOST: "127.0.0.1",
    PORT: String(port),
    DATABASE_URL: "",
    SIMULATOR_RATE_HZ: "0",
    ...env,
  });
  await service.waitForLog((l) => l.msg === "backend listening", 60_000);
  return { service, base: `http://127.0.0.1:${port}` };
}
