// Test helper: a real HTTP server answering the engine's GET /models, POST /models/{name}/activate and /retrain, GET /models/{name}/retrains/{version} (contracts/models_api.ts) behind ADMIN_TOKEN.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import * as v from "valibot";
import {
  type ActivateRequest,
  type ActivateResponse,
  activateRequestSchema,
  activateResponseSchema,
  modelsResponseSchema,
  type RetrainReport,
  type RetrainRequest,
  type RetrainRun,
  retrainReportSchema,
  retrainRequestSchema,
  retrainResponseSchema,
  type ServedModel,
} from "../../contracts/models_api.ts";

/** An activation request the stand-in accepted for a decision (past the bearer and the schema). */
export interface ReceivedActivation {
  model: string;
  request: ActivateRequest;
  authorization: string;
}

/** A retraining request the stand-in accepted for a decision (past the bearer and the schema). */
export interface ReceivedRetrain {
  model: string;
  request: RetrainRequest;
  authorization: string;
}

export interface EngineModelsStandIn {
  url: string;
  /** The requests it received, as `METHOD /path authorization`. */
  requests: string[];
  /** The activation requests that passed the bearer and the contract, in order. */
  activations: ReceivedActivation[];
  /** The retraining requests that passed the bearer and the contract, in order. */
  retrains: ReceivedRetrain[];
  /** Ends the run in progress as `held` (the next retraining request is accepted again). */
  finishRetraining(): void;
  close(): Promise<void>;
}

const OPERATION_PATH = /^\/models\/([^/]+)\/(activate|retrain)$/;
const REPORT_PATH = /^\/models\/([^/]+)\/retrains\/([^/]+)$/;

/**
 * Serves `models` at `GET /models` like the engine: `401 unauthorized` without the bearer
 * `token` (when given), `stall: true` never answers (a hung engine). `POST /models/{name}/activate`
 * answers as the engine's operations API does: `400 invalid_json` / `invalid_request` for a body
 * off the contract, `404 model_not_found` / `version_not_found`, else `200` with the switch
 * (`GET /models` shows it from then on; `by` defaults to "api"). `POST /models/{name}/retrain`
 * answers `404 model_not_found`, `409 retrain_unavailable` for a model without `retrain` (or in
 * the flat layout), `409 retrain_running` while a run of any model is running, else `202` with
 * the run, which `GET /models` lists as running until `finishRetraining()`. `GET
 * /models/{name}/retrains/{version}` answers `reports[name@version]` (`422 report_invalid` when it
 * breaks the contract), `404 model_not_found` / `version_not_found` / `report_not_found` as the
 * engine does. Everything else is
 * `404 not_found`, as from an engine without those routes. The models and every answer are checked
 * against the contract's schemas first, so a test cannot feed the backend a shape the engine
 * never sends.
 */
export async function startEngineModelsStandIn(options: {
  models: ServedModel[];
  token?: string;
  stall?: boolean;
  /** Retraining reports by `name@version`, answered as stored. */
  reports?: Record<string, unknown>;
}): Promise<EngineModelsStandIn> {
  // A copy of its own: activations change the active versions it lists.
  const { models } = v.parse(modelsResponseSchema, structuredClone({ models: options.models }));
  const requests: string[] = [];
  const activations: ReceivedActivation[] = [];
  const retrains: ReceivedRetrain[] = [];
  const json = (res: ServerResponse, status: number, payload: unknown) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(typeof payload === "string" ? payload : JSON.stringify(payload));
  };

  function activate(name: string, request: ActivateRequest): [number, unknown] {
    const model = models.find((m) => m.name === name);
    if (!model) return [404, { error: "model_not_found", message: `no model ${name}` }];
    if (!model.versions.includes(request.version)) {
      return [
        404,
        { error: "version_not_found", message: `${name} has no version ${request.version}` },
      ];
    }
    const from = model.active_version;
    const activation = {
      name,
      version: request.version,
      from,
      by: request.by ?? "api",
      at: new Date().toISOString(),
      reason: request.reason ?? "",
    };
    model.active_version = request.version;
    model.activation = activation;
    const answer: ActivateResponse = {
      status: "active",
      model: name,
      version: request.version,
      from,
      activation,
      windows_reset: false,
      streams: model.live_streams,
    };
    return [200, v.parse(activateResponseSchema, answer)];
  }

  function retrain(name: string, request: RetrainRequest): [number, unknown] {
    const model = models.find((m) => m.name === name);
    if (!model) return [404, { error: "model_not_found", message: `no model ${name}` }];
    if (!model.retrain || model.layout === "flat") {
      return [409, { error: "retrain_unavailable", message: `${name} cannot be retrained here` }];
    }
    const running = models.find((m) => m.retrain?.last?.outcome === "running");
    if (running) {
      return [
        409,
        {
          error: "retrain_running",
          message: `a retraining of ${running.name} is running; one runs at a time`,
        },
      ];
    }
    const at = new Date().toISOString();
    const run: RetrainRun = {
      started_at: at,
      finished_at: null,
      outcome: "running",
      reasons: [],
      requested: { by: request.by ?? "api", reason: request.reason ?? "", at },
    };
    model.retrain.last = run;
    return [202, v.parse(retrainResponseSchema, { status: "started", model: name, run })];
  }

  function finishRetraining() {
    for (const m of models) {
      const last = m.retrain?.last;
      if (m.retrain && last?.outcome === "running") {
        m.retrain.last = {
          ...last,
          outcome: "decided",
          decision: "held",
          finished_at: new Date().toISOString(),
          reasons: ["nothing better than the active version"],
        };
      }
    }
  }

  function report(name: string, version: string): [number, unknown] {
    const model = models.find((m) => m.name === name);
    if (!model) return [404, { error: "model_not_found", message: `no model ${name}` }];
    if (!model.versions.includes(version)) {
      return [404, { error: "version_not_found", message: `${name} has no version ${version}` }];
    }
    const stored = options.reports?.[`${name}@${version}`];
    if (stored === undefined) {
      return [
        404,
        { error: "report_not_found", message: `${name}@${version} has no retraining report` },
      ];
    }
    if (!v.safeParse(retrainReportSchema, stored).success) {
      return [422, { error: "report_invalid", message: `the report of ${name}@${version} is off` }];
    }
    return [200, stored];
  }

  async function readJson(req: IncomingMessage, optional: boolean): Promise<unknown> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    return optional && text.trim() === "" ? {} : JSON.parse(text);
  }

  const server = createServer(async function answer(req: IncomingMessage, res: ServerResponse) {
    const auth = req.headers.authorization ?? "";
    requests.push(`${req.method} ${req.url} ${auth}`);
    const operation = req.method === "POST" ? OPERATION_PATH.exec(req.url ?? "") : null;
    const reportOf = req.method === "GET" ? REPORT_PATH.exec(req.url ?? "") : null;
    if (!(req.method === "GET" && req.url === "/models") && !operation && !reportOf) {
      return json(res, 404, { error: "not_found", message: `no route ${req.url}` });
    }
    if (options.stall) return;
    if (options.token && auth !== `Bearer ${options.token}`) {
      return json(res, 401, { error: "unauthorized", message: "missing or wrong bearer token" });
    }
    if (reportOf) {
      return json(res, ...report(decodeURIComponent(reportOf[1]), decodeURIComponent(reportOf[2])));
    }
    if (!operation) return json(res, 200, { models });
    const isRetrain = operation[2] === "retrain";
    let body: unknown;
    try {
      body = await readJson(req, isRetrain);
    } catch {
      return json(res, 400, { error: "invalid_json", message: "the body must be a JSON object" });
    }
    const parsed = v.safeParse(isRetrain ? retrainRequestSchema : activateRequestSchema, body);
    if (!parsed.success) {
      const issue = parsed.issues[0];
      const field = v.getDotPath(issue) ?? "(body)";
      return json(res, 400, { error: "invalid_request", message: `${field}: ${issue.message}` });
    }
    const model = decodeURIComponent(operation[1]);
    if (isRetrain) {
      const request = parsed.output as RetrainRequest;
      retrains.push({ model, request, authorization: auth });
      return json(res, ...retrain(model, request));
    }
    const request = parsed.output as ActivateRequest;
    activations.push({ model, request, authorization: auth });
    json(res, ...activate(model, request));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    activations,
    retrains,
    finishRetraining,
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
      // Retraining when asked for (history on, no schedule).
      retrain: { every_h: 0, next_at: null },
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

/**
 * A retraining report as models/retrain/retrain.ts writes it (trimmed: no per-event hits, no
 * sensor check), candidate `candidate` of `model` held against `active`; `reason` is its one
 * reason. Checked against the contract, so tests cannot feed the backend a shape the engine
 * never sends.
 */
export function retrainReport(
  model: string,
  candidate: string,
  active: string,
  reason = "falseAlarmFramesPer10k: 12 > 7.6",
): RetrainReport {
  const metrics = (version: string, falseAlarms: number, spike: number) => ({
    version,
    recent: {
      windows: 533,
      alarmWindows: 3,
      incidents: 1,
      falseAlarmFramesPer10k: falseAlarms,
      falseIncidentsPer10k: 18.76172607879925,
    },
    confirmed: { incidents: 2, detected: 2, recall: 1 },
    injected: {
      spike: { events: 40, detected: spike, recall: spike / 40, found: [0, 1] },
      stuck: { events: 40, detected: 32, recall: 0.8, found: [2] },
    },
  });
  return v.parse(retrainReportSchema, {
    model,
    candidate_version: candidate,
    active_version: active,
    decision: "held",
    reasons: [reason],
    promote: "manual",
    activated: null,
    decided_at: "2026-11-24T09:40:00.000Z",
    criteria: [
      { name: "falseAlarmFramesPer10k", active: 6.6, candidate: 12, limit: 7.6, pass: false },
      {
        name: "injectedRecall.spike",
        active: 0.925,
        candidate: 0.8,
        limit: 0.875,
        pass: false,
        note: "of 40 events, 5 found by the active version only",
      },
      { name: "stuckDetection", active: null, candidate: 0, limit: 0, pass: true },
    ],
    tolerances: { injectedRecall: 0.05 },
    models: { active: metrics(active, 6.6, 37), candidate: metrics(candidate, 12, 32) },
    data: {
      history_dir: "/data/history/pump",
      chunks: 5,
      frames_read: 2784,
      time_range: { from: "2026-11-23T00:56:02.770Z", to: "2026-11-24T09:07:38.580Z" },
      usable_frames: 2685,
      false_positive_frames_used: 17,
      excluded_read: { incident_unjudged: 99 },
      excluded_before_recording: { silenced: 30, machine_off: 12 },
      training: {
        frames: 2107,
        runs: 3,
        from: "2026-11-23T00:56:02.770Z",
        to: "2026-11-24T08:05:24.327Z",
      },
      recent: {
        frames: 537,
        runs: 1,
        from: "2026-11-24T08:05:24.577Z",
        to: "2026-11-24T09:07:38.580Z",
      },
      confirmed_incidents: ["inc-1", "inc-2"],
      injected: {
        per_kind: 40,
        seed: 1,
        events: 80,
        left_out: {
          events: 1,
          rule: "within what operators judged normal",
          sensors: [
            { feature_idx: 3, feature: "temp_3", events: 1, judged_normal_std: 3.534 },
            { feature_idx: 4, feature: "temp_4", events: 0, judged_normal_std: 1.2 },
          ],
        },
      },
      stuck_left_out: {
        rule: "a sensor holding one reading for 5 frames or more",
        frames: 41,
        sensors: [{ feature: 7, name: "vib_7", frames: 41, action: "left_out" }],
      },
    },
  });
}
