// JSON-lines logging for both services: consola with a reporter that adds the active trace.
import { trace } from "@opentelemetry/api";
import { type ConsolaInstance, type ConsolaReporter, createConsola, type LogObject } from "consola";

/** Log levels by name, as `LOG_LEVEL` accepts them, mapped to consola's numeric levels. */
export const LOG_LEVELS = {
  silent: -999,
  fatal: 0,
  error: 0,
  warn: 1,
  info: 3,
  debug: 4,
  trace: 5,
} as const;
export type LogLevelName = keyof typeof LOG_LEVELS;

export type Logger = ConsolaInstance;

export interface LoggerOptions {
  service: string;
  level?: LogLevelName;
  /** Where lines go; defaults to stdout (errors too: one stream keeps lines in order). */
  write?: (line: string) => void;
}

function serialiseError(error: Error): Record<string, unknown> {
  const out: Record<string, unknown> = {
    name: error.name,
    message: error.message,
    stack: error.stack,
  };
  if (error.cause instanceof Error) out.cause = serialiseError(error.cause);
  return out;
}

/** The keys every line starts with; a field of the same name must not replace them. */
const CORE_KEYS = new Set(["time", "level", "msg", "service", "trace_id", "span_id"]);

/**
 * `JSON.stringify` that cannot throw on what callers log: a cycle becomes `"[circular]"`, a
 * BigInt its decimal string, and an `Error` inside a field `{name, message, stack, cause}`
 * (plain stringify writes `{}` for it).
 */
function toJson(record: Record<string, unknown>): string {
  // Objects on the path from the root to the value being written; a value already on it is a
  // cycle. A value met twice on different paths is not one, so a plain seen-set would not do.
  const path: object[] = [];
  return JSON.stringify(record, function replaceUnwritable(this: unknown, _key, value: unknown) {
    if (typeof value === "bigint") return value.toString();
    if (typeof value !== "object" || value === null) return value;
    while (path.length > 0 && path[path.length - 1] !== this) path.pop();
    if (path.includes(value)) return "[circular]";
    const written = value instanceof Error ? serialiseError(value) : value;
    path.push(written);
    return written;
  });
}

/**
 * A consola reporter writing one JSON object per line:
 * `{time, level, msg, service, trace_id, span_id, ...fields}`. Plain-object arguments become
 * fields; an `Error` becomes `error: {name, message, stack}`. A field named like one of the
 * leading keys is written as `fields.<name>` (`{ level: 3 }` gives `"fields.level": 3`), so a
 * caller's data can never change a line's level, message or trace. Logging never throws: a
 * line that cannot be written as logged is replaced by one saying why.
 */
export function jsonReporter(service: string, write: (line: string) => void): ConsolaReporter {
  return {
    log: function writeJsonLine(logObj: LogObject) {
      const time = logObj.date.toISOString();
      const level = logObj.type === "log" ? "info" : logObj.type;
      let line: string;
      try {
        const record: Record<string, unknown> = { time, level, msg: "", service };
        const span = trace.getActiveSpan()?.spanContext();
        if (span && span.traceId !== "00000000000000000000000000000000") {
          record.trace_id = span.traceId;
          record.span_id = span.spanId;
        }
        const words: string[] = [];
        for (const arg of logObj.args) {
          if (arg instanceof Error) record.error = serialiseError(arg);
          else if (arg && typeof arg === "object" && !Array.isArray(arg)) {
            for (const [key, value] of Object.entries(arg)) {
              record[CORE_KEYS.has(key) ? `fields.${key}` : key] = value;
            }
          } else words.push(String(arg));
        }
        if (logObj.message) words.unshift(logObj.message);
        record.msg = words.join(" ");
        line = toJson(record);
      } catch (error) {
        // A throwing getter or toString in the caller's data must not turn a log call into a
        // crash of the code that made it.
        const reason = error instanceof Error ? error.message : "unknown error";
        line = JSON.stringify({
          time,
          level,
          msg: "log line could not be written",
          service,
          reason,
        });
      }
      try {
        write(`${line}\n`);
      } catch {
        // Nowhere left to say it; the caller's work goes on.
      }
    },
  };
}

let outputGuarded = false;

/**
 * Keeps a closed output from ending the process: once the terminal that ran it closed (SIGHUP, a
 * dropped SSH session) or the reader of its pipe is gone, every write to stdout and stderr fails
 * (EIO, EPIPE) as an `error` event, which, unhandled, ended the services in the middle of the
 * very shutdown that signal started, before their database and outbox were closed. Lines written
 * then have nowhere to go and are dropped; the work goes on. Idempotent.
 */
export function ignoreClosedOutput(): void {
  if (outputGuarded) return;
  outputGuarded = true;
  for (const stream of [process.stdout, process.stderr]) stream.on("error", () => {});
}

/**
 * Creates the service logger.
 *
 * @example
 * const log = createLogger({ service: "engine", level: "info" });
 * log.info("batch scored", { batch_size: 3, latency_ms: 4.2 });
 * log.error("delivery failed", error, { alert_id });
 */
export function createLogger(options: LoggerOptions): Logger {
  if (!options.write) ignoreClosedOutput();
  const write = options.write ?? ((line: string) => void process.stdout.write(line));
  return createConsola({
    level: LOG_LEVELS[options.level ?? "info"],
    // consola's default throttle merges lines whose arguments serialise alike (every Error is
    // `{}` to it) into one "(repeated N times)" line, losing their stacks, and holds the process
    // for a second on a timer: every call is written as it was made.
    throttle: 0,
    reporters: [jsonReporter(options.service, write)],
  });
}
