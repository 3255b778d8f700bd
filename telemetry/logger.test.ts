import assert from "node:assert/strict";
import { test } from "node:test";
import { createLogger } from "./logger.ts";

/** A logger whose lines are collected, parsed, instead of written to stdout. */
function capture(level: "info" | "debug" = "info") {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({
    service: "svc",
    level,
    write: (line) => lines.push(JSON.parse(line)),
  });
  return { log, lines };
}

test("createLogger writes every line as logged, repeats included", () => {
  const { log, lines } = capture();
  // Errors with one message serialise alike to consola's throttle, which used to fold the
  // sixth and later into a "(repeated N times)" line a second later, without their stacks.
  const errors = Array.from({ length: 8 }, (_, i) => {
    const error = new Error("delivery failed");
    error.stack = `Error: delivery failed\n    at attempt ${i}`;
    return error;
  });
  for (const error of errors) log.error("alert not delivered", error);

  assert.equal(lines.length, 8);
  assert.deepEqual(
    lines.map((line) => (line.error as { stack: string }).stack),
    errors.map((error) => error.stack),
  );
  for (const line of lines) assert.equal(line.msg, "alert not delivered");
});

test("createLogger writes circular and BigInt fields instead of throwing", () => {
  const { log, lines } = capture();
  const frame: Record<string, unknown> = { stream: "s1" };
  frame.self = frame;
  const shared = { unit: "ms" };
  assert.doesNotThrow(() =>
    log.info("frame", { frame, offset: 2n ** 64n, a: shared, b: shared, cause: new Error("x") }),
  );

  assert.equal(lines.length, 1);
  assert.deepEqual(lines[0].frame, { stream: "s1", self: "[circular]" });
  assert.equal(lines[0].offset, "18446744073709551616");
  // The same object in two places is not a cycle.
  assert.deepEqual(lines[0].a, { unit: "ms" });
  assert.deepEqual(lines[0].b, { unit: "ms" });
  assert.equal((lines[0].cause as { message: string }).message, "x");
});

test("createLogger writes a line saying why when a field cannot be read", () => {
  const { log, lines } = capture();
  const hostile = {
    get value(): never {
      throw new Error("getter exploded");
    },
  };
  assert.doesNotThrow(() => log.warn("reading", hostile));

  assert.equal(lines.length, 1);
  assert.equal(lines[0].level, "warn");
  assert.equal(lines[0].service, "svc");
  assert.equal(lines[0].msg, "log line could not be written");
  assert.equal(lines[0].reason, "getter exploded");
});

test("createLogger keeps its own keys when fields share their names", () => {
  const { log, lines } = capture();
  log.warn("real message", {
    time: "yesterday",
    level: "info",
    msg: "fake message",
    service: "other",
    trace_id: "t",
    span_id: "s",
    batch_size: 3,
  });

  assert.equal(lines.length, 1);
  const [line] = lines;
  assert.equal(line.level, "warn");
  assert.equal(line.msg, "real message");
  assert.equal(line.service, "svc");
  assert.notEqual(line.time, "yesterday");
  assert.equal(line.trace_id, undefined);
  assert.equal(line.span_id, undefined);
  assert.equal(line.batch_size, 3);
  assert.deepEqual(
    Object.keys(line).filter((key) => key.startsWith("fields.")),
    [
      "fields.time",
      "fields.level",
      "fields.msg",
      "fields.service",
      "fields.trace_id",
      "fields.span_id",
    ],
  );
  assert.equal(line["fields.msg"], "fake message");
  assert.equal(line["fields.level"], "info");
});
