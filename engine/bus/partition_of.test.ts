// The partition model must never change between processes or releases; roles need the NATS bus.
import assert from "node:assert/strict";
import { test } from "node:test";
import { engineConfigSchema, parseConfig } from "../../contracts/config.ts";
import { createLogger } from "../../telemetry/logger.ts";
import { createRole } from "../roles/create_role.ts";
import { frameMessageId, partitionOf, partitionSubject } from "./partition_of.ts";

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

test("a split role on the in-memory bus is a configuration error", () => {
  const log = createLogger({ service: "engine", level: "silent" });
  for (const role of ["ingest", "worker"]) {
    const config = parseConfig(engineConfigSchema, { ENGINE_ROLE: role });
    assert.throws(() => createRole({ config, log }), /'ENGINE_ROLE' .* needs 'FRAME_BUS' nats/);
  }
  const config = parseConfig(engineConfigSchema, {});
  assert.equal(typeof createRole({ config, log }).start, "function");
});
