// Test helper: a real HTTP server answering the engine's GET /models (contracts/models_api.ts) behind ADMIN_TOKEN.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import * as v from "valibot";
import { modelsResponseSchema, type ServedModel } from "../../contracts/models_api.ts";

export interface EngineModelsStandIn {
  url: string;
  /** The requests it received, as `METHOD /path authorization`. */
  requests: string[];
  close(): Promise<void>;
}

/**
 * Serves `models` at `GET /models` like the engine: `401 unauthorized` without the bearer
 * `token` (when given), `stall: true` never answers (a hung engine). Everything else is `404
 * not_found`, as from an engine without those routes. The body is checked against the
 * contract's schema first, so a test cannot feed the backend a shape the engine never sends.
 */
export async function startEngineModelsStandIn(options: {
  models: ServedModel[];
  token?: string;
  stall?: boolean;
}): Promise<EngineModelsStandIn> {
  const body = JSON.stringify(v.parse(modelsResponseSchema, { models: options.models }));
  const requests: string[] = [];
  const json = (res: ServerResponse, status: number, payload: unknown) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(typeof payload === "string" ? payload : JSON.stringify(payload));
  };
  const server = createServer(function answer(req: IncomingMessage, res: ServerResponse) {
    const auth = req.headers.authorization ?? "";
    requests.push(`${req.method} ${req.url} ${auth}`);
    if (req.method !== "GET" || req.url !== "/models") {
      return json(res, 404, { error: "not_found", message: `no route ${req.url}` });
    }
    if (options.stall) return;
    if (options.token && auth !== `Bearer ${options.token}`) {
      return json(res, 401, { error: "unauthorized", message: "missing or wrong bearer token" });
    }
    json(res, 200, body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Two models as a registry engine lists them: one switched from 2.2.0 by an operator. */
export function servedModels(activationBy = "Ana", reason = "retrained"): ServedModel[] {
  return [
    {
      name: "featurewise_ocsvm",
      layout: "registry",
      active_version: "2.3.0+9fa2419cba78",
      versions: ["2.2.0", "2.3.0+9fa2419cba78"],
      n_features: 25_000,
      window_size: 5,
      routes: ["*"],
      live_streams: 3,
      activation: {
        name: "featurewise_ocsvm",
        version: "2.3.0+9fa2419cba78",
        from: "2.2.0",
        by: activationBy,
        at: "2026-11-24T09:30:00.000Z",
        reason,
      },
    },
    {
      name: "boiler",
      layout: "flat",
      active_version: "1.0.0",
      versions: ["1.0.0"],
      n_features: 12,
      window_size: 5,
      routes: ["boiler-*"],
      live_streams: 0,
    },
  ];
}
