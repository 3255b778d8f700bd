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

/**
 * A consola reporter writing one JSON object per line:
 * `{time, level, msg, service, trace_id, span_id, ...fields}`. Plain-object arguments become
 * fields; an `Error` becomes `error: {name, message, stack}`.
 */
export function jsonReporter(service: string, write: (line: string) => void): ConsolaReporter {
  return {
    log: function writeJsonLine(logObj: LogObject) {
      const record: Record<string, unknown> = {
        time: logObj.date.toISOString(),
        level: logObj.type === "log" ? "info" : logObj.type,
        msg: "",
        service,
      };
      const span = trace.getActiveSpan()?.spanContext();
      if (span && span.traceId !== "00000000000000000000000000000000") {
        record.trace_id = span.traceId;
        record.span_id = span.spanId;
      }
      const words: string[] = [];
      for (const arg of logObj.args) {
        if (arg instanceof Error) record.error = serialiseError(arg);
        else if (arg && typeof arg === "object" && !Array.isArray(arg)) Object.assign(record, arg);
        else words.push(String(arg));
      }
      if (logObj.message) words.unshift(logObj.message);
      record.msg = words.join(" ");
      write(`${JSON.stringify(record)}\n`);
    },
  };
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
  const write = options.write ?? ((line: string) => void process.stdout.write(line));
  return createConsola({
    level: LOG_LEVELS[options.level ?? "info"],
    reporters: [jsonReporter(options.service, write)],
  });
}
