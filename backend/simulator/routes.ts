// HTTP routes of the simulator: the original `POST /data/send` and control of the stream mode.
import { type Context, Hono } from "hono";
import * as v from "valibot";
import type { Identity } from "../../contracts/auth.ts";
import { HttpError } from "../../contracts/error.ts";
import { STREAM_ID_PATTERN } from "../../contracts/frame.ts";
import { ANOMALY_KINDS, type AnomalyKind } from "../../models/signal/mod.ts";
import { bodyText } from "../_parse_body.ts";
import { type AuditRepository, recordDone } from "../audit/audit_repository.ts";
import type { Auth } from "../auth/auth.ts";
import { STOP_KINDS } from "./plant_streams.ts";
import type { Simulator } from "./simulator.ts";
import { MAX_ANOMALY_MAGNITUDE } from "./stream_plan.ts";

const kind = v.picklist(ANOMALY_KINDS as AnomalyKind[]);
const count = (max: number) => v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(max));

const planSchema = v.strictObject({
  rate_hz: v.pipe(v.number(), v.minValue(0.001), v.maxValue(1000)),
  duration_s: v.optional(v.pipe(v.number(), v.minValue(0), v.maxValue(7 * 86_400))),
  streams: v.optional(v.pipe(count(1000), v.minValue(1)), 1),
  anomaly_every_s: v.optional(v.pipe(v.number(), v.minValue(0), v.maxValue(86_400)), 20),
  kinds: v.optional(v.array(kind)),
  anomalies: v.optional(
    v.pipe(
      v.array(
        v.strictObject({
          at_frame: count(100_000_000),
          stream_id: v.optional(v.pipe(v.string(), v.regex(STREAM_ID_PATTERN))),
          kind: v.optional(kind),
          features: v.optional(v.pipe(v.array(count(10_000_000)), v.minLength(1))),
          duration: v.optional(v.pipe(count(1_000_000), v.minValue(1))),
          // In sensor std; past the bound a reading leaves what a frame carries.
          magnitude: v.optional(
            v.pipe(
              v.number(),
              v.minValue(-MAX_ANOMALY_MAGNITUDE),
              v.maxValue(MAX_ANOMALY_MAGNITUDE),
            ),
          ),
        }),
      ),
      v.maxLength(10_000),
    ),
  ),
  /**
   * Machine stops: the plant's drive reads 0 for `duration` frames from `at_frame`, the machine
   * stopped (`kind` `"machine"`, the default) or running on (`"sensor"`: a dead drive sensor).
   */
  stops: v.optional(
    v.pipe(
      v.array(
        v.strictObject({
          at_frame: count(100_000_000),
          stream_id: v.optional(v.pipe(v.string(), v.regex(STREAM_ID_PATTERN))),
          duration: v.pipe(count(1_000_000), v.minValue(1)),
          kind: v.optional(v.picklist(STOP_KINDS)),
        }),
      ),
      v.maxLength(10_000),
    ),
  ),
  /** The operating point moves (or, `moved: false`, moves back) from `at_frame` on and stays. */
  moves: v.optional(
    v.pipe(
      v.array(
        v.strictObject({
          at_frame: count(100_000_000),
          stream_id: v.optional(v.pipe(v.string(), v.regex(STREAM_ID_PATTERN))),
          moved: v.optional(v.boolean(), true),
        }),
      ),
      v.maxLength(10_000),
    ),
  ),
});

// No stream named: the run's first, or "default" with no run (the simulator decides).
const moveSchema = v.strictObject({
  stream_id: v.optional(v.pipe(v.string(), v.regex(STREAM_ID_PATTERN))),
  moved: v.boolean(),
});

const sendSchema = v.strictObject({
  stream_id: v.optional(v.pipe(v.string(), v.regex(STREAM_ID_PATTERN)), "default"),
});

/** The body as a JSON object (none: `{}`); anything else is a 400. */
async function jsonBody(req: Request): Promise<unknown> {
  const text = await bodyText(req);
  if (text.trim() === "") return {};
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    throw new HttpError(400, "invalid_json", `body is not JSON: ${(error as Error).message}`);
  }
  // valibot's object schemas take an array (typeof "object"): `[]` sent a frame.
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    const got = body === null ? "null" : Array.isArray(body) ? "an array" : typeof body;
    throw new HttpError(400, "invalid_request", `body must be a JSON object, got ${got}`);
  }
  return body;
}

/** Runs `action`, turning the simulator's `RangeError` (a stream it refuses) into a 400. */
function refusing<T>(action: () => T): T {
  try {
    return action();
  } catch (error) {
    if (error instanceof RangeError) throw new HttpError(400, "invalid_request", error.message);
    throw error;
  }
}

function parse<S extends v.GenericSchema>(schema: S, input: unknown): v.InferOutput<S> {
  const r = v.safeParse(schema, input);
  if (r.success) return r.output;
  const path = v.getDotPath(r.issues[0]);
  throw new HttpError(400, "invalid_request", `${path ? `${path}: ` : ""}${r.issues[0].message}`);
}

/**
 * Mounted under `/data`: `POST /send` (one frame; answers with the engine's status and body),
 * `POST /stream` (start a run, JSON plan), `GET /stream` (progress and ground truth),
 * `DELETE /stream` (stop), `POST /operating-point` (move a stream's operating point, or back;
 * while a run goes on, one of its streams, its first when none is named). With `audit`, a run
 * started or stopped and a move are recorded with who did it (`simulator.start`,
 * `simulator.stop`, `simulator.move`): they feed the engine frames that can raise incidents and
 * go into its training history. A single frame (`/send`, the original contract) is not.
 */
export function simulatorRoutes(
  simulator: Simulator,
  auth?: Auth,
  audit?: { repository: AuditRepository; now: () => number },
): Hono {
  const app = new Hono();
  /** Who asked, by request (set by the role check). */
  const who = new WeakMap<Request, Identity>();
  // Driving the simulator is an operator's action (reading it is anyone's): with people signed
  // in, an operator's; without, from this site's own pages or a client that is no browser (and
  // with CONSOLE_TOKEN when one is set), as for acknowledgements, so another site's page cannot
  // make a visitor's browser start a run.
  if (auth) {
    app.use(async (c, next) => {
      if (c.req.method !== "GET" && c.req.method !== "HEAD") {
        who.set(c.req.raw, await auth.require(c, "operator"));
      }
      await next();
    });
  }
  /** Records `action` by the request's identity, once it was done (503 `not_audited` if it cannot be). */
  async function record(
    c: Context,
    action: string,
    target: string,
    detail: Record<string, unknown>,
    done: string,
  ): Promise<void> {
    const actor = who.get(c.req.raw);
    if (!audit || !actor) return;
    await recordDone(
      audit.repository,
      { action, target, actor, at: new Date(audit.now()), detail },
      done,
    );
  }
  app.post("/send", async function sendFrame(c) {
    const { stream_id } = parse(sendSchema, await jsonBody(c.req.raw));
    const answer = await simulator.sendOne(stream_id, c.req.raw.signal);
    // The engine's Retry-After and content type go through: a client backs off as it says.
    const status = answer.status as 202;
    if (typeof answer.body === "string") return c.body(answer.body, status, answer.headers);
    return c.json(answer.body as object, status, answer.headers);
  });
  app.post("/stream", async function startStream(c) {
    const plan = parse(planSchema, await jsonBody(c.req.raw));
    try {
      await simulator.start(plan);
    } catch (error) {
      if (error instanceof RangeError) throw new HttpError(400, "invalid_request", error.message);
      throw error;
    }
    await record(c, "simulator.start", "simulator:run", { plan }, "the run started");
    return c.json(simulator.status(), 202);
  });
  app.get("/stream", (c) => c.json(simulator.status()));
  // The plant's operating point moves for good (a new setpoint, replaced equipment).
  app.post("/operating-point", async function moveOperatingPoint(c) {
    const body = parse(moveSchema, await jsonBody(c.req.raw));
    const { streamId: stream_id, move } = refusing(() =>
      simulator.moveOperatingPoint(body.stream_id, body.moved),
    );
    const { moved } = body;
    await record(
      c,
      "simulator.move",
      `stream:${stream_id}`,
      { moved },
      moved ? "the operating point moved" : "the operating point moved back",
    );
    return c.json({
      stream_id,
      moved,
      ...(move
        ? {
            shifted_sensors: move.shifted.length,
            shift_std: move.shiftStd,
            mirrored_sensors: move.mirrored,
            coupled: move.coupled ?? null,
          }
        : {}),
    });
  });
  app.delete("/stream", async function stopStream(c) {
    const wasRunning = simulator.status().running;
    await simulator.stop();
    if (wasRunning) await record(c, "simulator.stop", "simulator:run", {}, "the run stopped");
    return c.json(simulator.status());
  });
  return app;
}
