// The JSON error body every endpoint of both services answers with, and the one error type behind it.
import * as v from "valibot";

/**
 * Stable machine-readable error codes. Clients switch on these; the `message` is for humans and
 * may change. Adding a code is fine, renaming one is a breaking change.
 */
export const ERROR_CODES = [
  // transport and encoding
  "invalid_json", // body is not parseable JSON (400)
  "invalid_compression", // gzip/deflate stream is corrupt or truncated (400)
  "payload_too_large", // compressed body over MAX_BODY_BYTES (413)
  "decompressed_too_large", // inflated body over MAX_DECOMPRESSED_BYTES (413)
  "unsupported_encoding", // Content-Encoding other than gzip, deflate, identity (415; an alert: other than identity)
  "request_timeout", // body did not arrive in time (408)
  "body_incomplete", // the client closed the connection before its body ended (400; nobody is left to read it)
  // frame contract (422)
  "frame_invalid_shape", // not an object, `data` not an object, unknown top-level key, wrong binary length
  "frame_invalid_value", // a feature value that is not a finite JSON number
  "frame_unknown_features", // keys the model does not know
  "frame_duplicate_features", // a feature key present more than once
  "frame_missing_features", // model features absent from the frame
  "frame_invalid_timestamp", // timestamp neither ISO 8601 nor epoch milliseconds (a number below 1e11 is refused as epoch seconds)
  "frame_invalid_stream_id", // stream_id not a 1..128 char string of [A-Za-z0-9._:-]
  "frame_out_of_order", // timestamp older than the stream's window already scored (409)
  "frame_timestamp_collision", // the millisecond of a recent frame of the stream, whose values differ: timestamps are kept to the millisecond (409)
  // alert contract
  "invalid_alert", // alert body breaks the contract (422)
  "invalid_signature", // Standard Webhooks signature missing, wrong or stale (401)
  // service state
  "unauthorized", // missing or wrong bearer token (401)
  // who may do what (backend AUTH_MODE=token|oidc)
  "unauthenticated", // no identity: sign in, or send a valid API token (401)
  "forbidden", // the identity's role does not allow this (403)
  "cross_site", // a cookie-authorised action or sign-in from another site's page (403)
  "host_not_allowed", // a service without sign-in addressed by a name not its loopback's (DNS rebinding) (403)
  "too_many_attempts", // too many failed sign-ins from this address, retry after Retry-After (429)
  "signin_failed", // the identity provider's answer was refused: state, issuer, audience, role (401)
  "queue_full", // ingest queue full, retry after Retry-After seconds (429)
  "too_many_uploads", // QUEUE_MAX_SIZE uploads already being read or decoded (every model together), retry after Retry-After seconds (429)
  "too_many_streams", // MAX_STREAMS streams are active (each within INCIDENT_STALE_MS): a new stream waits for one to fall silent (503)
  "model_not_ready", // model still loading or failed (503)
  "shutting_down", // service is draining (503)
  "outbox_full", // engine's alert outbox holds OUTBOX_MAX_ALERTS undelivered alerts or OUTBOX_MAX_BYTES of them (503)
  "bus_unavailable", // ingest replica: JetStream did not acknowledge the frame in time (503)
  "database_unavailable", // database unreachable (503)
  "engine_unreachable", // the simulator could not reach the engine (502)
  "not_found", // no such route or resource (404)
  "method_not_allowed", // the path has routes, none for this method; Allow names theirs (405)
  "invalid_request", // malformed path or query parameter (400)
  // model operations (engine: GET /models, POST /models/{name}/activate and /retrain, GET /models/{name}/retrains/{version})
  "model_not_found", // no such model in MODEL_DIR, or not one the engine serves (404)
  "version_not_found", // the model has no such complete version (404)
  "invalid_version", // a version that is not a safe path segment (400)
  "model_incompatible", // other feature names or window size than the active version, without reset_windows (409)
  "activation_in_progress", // another activation of the model is under way (409)
  "registry_entry_invalid", // a version whose graph and metadata disagree, or that fails to parse (422)
  "model_load_failed", // the version's graph could not be loaded or warmed (422)
  "retrain_running", // a retraining (scheduled or asked for) is running or waiting for a worker; one at a time (409)
  "retrain_unavailable", // the engine cannot retrain: history off, a flat-layout model, no worker took the request (409)
  "report_not_found", // the version has no retraining report: it was not written by a retraining (404)
  "report_invalid", // the version's retraining report does not parse or lacks what the console shows (422)
  "not_audited", // the engine acted (activated, started a retraining) but the backend could not record it in its audit (503)
  "activation_outcome_unknown", // the engine's answer to an activation was lost (timeout, cut connection) and GET /models does not show it done: it may still happen; check before trying again (504)
  "not_dead_letter", // a notification re-send of a message that is not a dead letter, or whose re-send would come after its incident's end (409)
  "already_retired", // a stream retirement while one is in force for the stream (409)
  "internal_error", // a bug; the log has the stack trace (500)
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export const errorBodySchema = v.strictObject({
  error: v.picklist(ERROR_CODES),
  message: v.string(),
});

export type ErrorBody = v.InferOutput<typeof errorBodySchema>;

/**
 * An error that maps to one HTTP answer. Thrown anywhere below a handler; one `app.onError` per
 * service turns it into `{error, message}` with the status (and headers, e.g. Retry-After).
 *
 * @example throw new HttpError(429, "queue_full", "queue holds 100 frames", { "Retry-After": "1" })
 */
export class HttpError extends Error {
  readonly status: number;
  readonly code: ErrorCode;
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    code: ErrorCode,
    message: string,
    headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "HttpError";
    this.status = status;
    this.code = code;
    this.headers = headers;
  }

  get body(): ErrorBody {
    return { error: this.code, message: this.message };
  }
}
