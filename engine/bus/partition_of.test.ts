// The partition model and alert ids must never change between processes or releases.
import assert from "node:assert/strict";
import { test } from "node:test";
import { engineConfigSchema, parseConfig } from "../../contracts/config.ts";
import { createLogger } from "../../telemetry/logger.ts";
import { createRole } from "../roles/create_role.ts";
import { frameMessageId, partitionOf, partitionSubject } from "./partition_of.ts";
import { windowAlertId } from "./window_alert_id.ts";

test("partitionOf is a fixed FNV-1a of the stream id", () => {
  // Pinned values: a change here moves streams between partitions and breaks their order.
  assert.equal(partitionOf("default", 32), 30);
  assert.equal(partitionOf("line-3", 32), 23);
  assert.equal(partitionOf("line-3", 1), 0);
  const seen = new Set<number>();
  for (let i = 0; i < 1000; i++) seen.add(partitionOf(`s-${i}`, 32));
  assert.equal(seen.size, 32, "1000 streams reach every one of 32 partitions");
  assert.equal(partitionSubject("FRAMES", 7), "FRAMES.p.7");
  assert.equal(frameMessageId("line-3", 1700000000000), "line-3@1700000000000");
});

test("windowAlertId is a UUID determined by stream, window end and model version", () => {
  const id = windowAlertId("line-3", 1700000000000, "m", "1.0.0");
  assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(windowAlertId("line-3", 1700000000000, "m", "1.0.0"), id);
  assert.notEqual(windowAlertId("line-3", 1700000000001, "m", "1.0.0"), id);
  assert.notEqual(windowAlertId("line-4", 1700000000000, "m", "1.0.0"), id);
  assert.notEqual(windowAlertId("line-3", 1700000000000, "m", "1.0.1"), id);
  assert.notEqual(windowAlertId("line-3", 1700000000000, "n", "1.0.0"), id);
});

test("a split role on the in-memory bus is a configuration error", () => {
  const log = createLogger({ service: "engine", level: "silent" });
  for (const role of ["ingest", "worker"]) {
    const config = parseConfig(engineConfigSchema, { ENGINE_ROLE: role });
    assert.throws(() => createRole({ config, log }), /'ENGINE_ROLE' .* needs 'FRAME_BUS' nats/);
  }
  const config = parseConfig(engineConfigSchema, {});
  assert.equal(typeof createRole({ config, log }).start, "function");
});
