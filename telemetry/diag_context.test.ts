import assert from "node:assert/strict";
import { AsyncLocalStorage } from "node:async_hooks";
import { test } from "node:test";
import {
  type Context,
  type ContextManager,
  context,
  ROOT_CONTEXT,
  trace,
} from "@opentelemetry/api";
import { createLogger } from "./logger.ts";
import { createDiagLogger } from "./setup.ts";

/** Context kept across async calls, as NodeSDK's AsyncLocalStorage manager keeps it. */
class StorageContextManager implements ContextManager {
  readonly #storage = new AsyncLocalStorage<Context>();
  active(): Context {
    return this.#storage.getStore() ?? ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    ctx: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    return this.#storage.run(ctx, () => fn.call(thisArg, ...args));
  }
  bind<T>(_ctx: Context, target: T): T {
    return target;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    this.#storage.disable();
    return this;
  }
}

test("a diagnostic logged inside a frame's span carries no trace: the collector's failure is not the frame's", () => {
  assert.ok(context.setGlobalContextManager(new StorageContextManager()));
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ service: "engine", write: (l) => lines.push(JSON.parse(l)) });
  const diagnostics = createDiagLogger(log);
  const frame = trace.wrapSpanContext({
    traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
    spanId: "00f067aa0ba902b7",
    traceFlags: 1,
  });
  context.with(trace.setSpan(ROOT_CONTEXT, frame), () => {
    log.info("inference batch");
    // What the SDK's exporter does when its export, scheduled by this span's end, times out.
    diagnostics.error("Request timed out");
  });
  assert.deepEqual(
    lines.map((l) => [l.msg, l.trace_id]),
    [
      ["inference batch", "4bf92f3577b34da6a3ce929d0e0e4736"],
      ["opentelemetry: Request timed out", undefined],
    ],
  );
  context.disable();
});
