// What became of an activation whose answer was lost (a timeout, a cut connection): read back from the engine's GET /models.
import { HttpError } from "../../contracts/error.ts";
import {
  type ActivateResponse,
  modelsResponseSchema,
  type ServedModel,
} from "../../contracts/models_api.ts";
import { type EngineCallOptions, getFromEngine } from "./engine_call.ts";

/** How far behind the backend's clock the engine's may be when its record is matched to the request. */
export const CLOCK_SKEW_MS = 60_000;
/** How long `GET /models` is read back for a switch under way (whatever the activation's own deadline). */
export const READ_BACK_MS = 10_000;
/** Between two reads. */
const READ_BACK_EVERY_MS = 250;

/** What was asked: the version, and who and why as the engine records them. */
export interface AskedActivation {
  version: string;
  by: string;
  reason: string;
  /** When the request was sent, by the backend's clock (epoch ms). */
  sentAt: number;
}

/** What the engine serves now, as said in an unknown outcome. */
function servingNow(model: ServedModel | undefined): string {
  if (!model) return "it does not list the model";
  const a = model.activation;
  const record = a
    ? `the last activation ${a.from ?? "none"} → ${a.version} by ${a.by} at ${a.at}`
    : "no activation recorded";
  return `it serves ${model.active_version} (${record})`;
}

/** Waits `ms`; false, at once, when `deadline` has passed or passes first. */
function pause(ms: number, deadline: AbortSignal): Promise<boolean> {
  if (deadline.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const timer = setTimeout(function paused() {
      deadline.removeEventListener("abort", stop);
      resolve(true);
    }, ms);
    function stop() {
      clearTimeout(timer);
      resolve(false);
    }
    deadline.addEventListener("abort", stop, { once: true });
  });
}

/**
 * What `model`, as `GET /models` lists it, says of the activation `asked`: the switch when its
 * last activation is the one asked for (the version, by, reason, recorded since `sentAt` less
 * {@link CLOCK_SKEW_MS}) and that version scores; `unchanged` when the version scores with no
 * such record (it was active already); undefined while neither (not yet, or not at all).
 */
function outcomeOf(model: ServedModel, asked: AskedActivation): ActivateResponse | undefined {
  const a = model.activation;
  if (model.active_version !== asked.version || !a) return undefined;
  const streams = model.streams ?? model.live_streams;
  const recorded =
    a.version === asked.version &&
    a.by === asked.by &&
    a.reason === asked.reason &&
    Date.parse(a.at) >= asked.sentAt - CLOCK_SKEW_MS;
  if (!recorded) {
    // The record precedes the swap: the version scores without it only if it was active before.
    return {
      status: "active",
      model: model.name,
      version: asked.version,
      from: asked.version,
      activation: a,
      windows_reset: false,
      streams,
      unchanged: true,
    };
  }
  return {
    status: "active",
    model: model.name,
    version: a.version,
    from: a.from ?? "none",
    activation: a,
    // Compatibility goes both ways: the previous version is listed against the new one.
    windows_reset: a.from !== null && (model.incompatible_versions ?? []).includes(a.from),
    streams,
  };
}

/**
 * Reads `GET /models` after the answer to activating `name` was lost (`lost` says how), every
 * 250 ms for `readBackMs` ({@link READ_BACK_MS}) while the switch may be under way, and resolves
 * with what the engine did ({@link outcomeOf}). When it shows neither by then, the switch may not
 * have happened yet, or not at all: `504 activation_outcome_unknown`, saying what the engine
 * serves now.
 *
 * @example const answer = await activationOutcome(o, "pump", asked, lost);
 */
export async function activationOutcome(
  o: EngineCallOptions,
  name: string,
  asked: AskedActivation,
  lost: HttpError,
  readBackMs = READ_BACK_MS,
): Promise<ActivateResponse> {
  const deadline = AbortSignal.timeout(readBackMs);
  const until = Date.now() + readBackMs;
  let seen: string;
  do {
    try {
      const { models } = await getFromEngine(
        { ...o, timeoutMs: Math.max(1, until - Date.now()) },
        "/models",
        modelsResponseSchema,
      );
      const model = models.find((m) => m.name === name);
      const outcome = model && outcomeOf(model, asked);
      if (outcome) return outcome;
      seen = servingNow(model);
    } catch (error) {
      seen = `reading GET /models back failed too (${(error as Error).message})`;
    }
  } while (await pause(READ_BACK_EVERY_MS, deadline));
  throw new HttpError(
    504,
    "activation_outcome_unknown",
    `${lost.message}. Whether ${name} ${asked.version} was activated is not known: ${seen}; ` +
      "the switch may still come. Check the Health page before activating again.",
  );
}
