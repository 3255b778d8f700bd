// A frame naming a model version the worker cannot have, against a real nats-server: scored with
// the active version, and every partition goes on (a throw failed the round and re-read that frame
// for ever, stalling all of the worker's partitions).
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { createLogger } from "../../telemetry/logger.ts";
import { trainFixtureModel } from "../_test/model_fixture.ts";
import { roleConfig } from "../_test/role_config.ts";
import { waitFor } from "../_test/wait_for.ts";
import { createWorkerRole } from "../roles/worker_role.ts";
import { startNatsServer } from "./_test/nats_server.ts";
import { encodeFrame } from "./frame_message.ts";
import { partitionOf } from "./partition_of.ts";

test("a frame naming a version that cannot be loaded is scored with the active one; no partition stalls", async () => {
  const PARTS = 4;
  const STREAM = "POISON";
  const server = await startNatsServer();
  const model = await trainFixtureModel({ features: 12, name: "poison_fixture" });
  const dataDir = await mkdtemp(join(tmpdir(), "poison-data-"));
  const warned: string[] = [];
  const log = createLogger({
    service: "w1",
    level: "info",
    write: (line) => {
      const record = JSON.parse(line);
      if (record.level === "warn" || record.level === "error") warned.push(record.msg);
    },
  });
  const config = roleConfig("worker", server.url, model, {
    NATS_STREAM: STREAM,
    NATS_PARTITIONS: String(PARTS),
    DATA_DIR: dataDir,
    NESTJS_URL: "http://127.0.0.1:9",
  });
  const worker = createWorkerRole({ config, log });
  const nc = await connect({ servers: server.url });
  try {
    await worker.start();
    const meta = JSON.parse(await readFile(join(model.dir, `${model.name}.json`), "utf8"));
    const js = jetstream(nc);
    const streamOn = (p: number) => {
      for (let i = 0; ; i++) if (partitionOf(`s${i}`, PARTS) === p) return `s${i}`;
    };
    let ts = Date.UTC(2026, 0, 1);
    const lastSeq: number[] = new Array(PARTS).fill(0);
    const publish = async (p: number, version: string = meta.version) => {
      ts += 1000;
      const { headers, payload } = encodeFrame({
        streamId: streamOn(p),
        timestamp: ts,
        receivedAt: Date.now(),
        model: version,
        modelName: "",
        values: model.normalFrame((ts / 1000) % 100),
      });
      lastSeq[p] = (await js.publish(`${STREAM}.p.${p}`, payload, { headers })).seq;
    };
    await publish(0, "bad version");
    for (let i = 0; i < 10; i++) for (let p = 0; p < PARTS; p++) await publish(p);
    const kv = await new Kvm(nc).open(`${STREAM}_leases`);
    const committed = async () => {
      const out: number[] = [];
      for (let p = 0; p < PARTS; p++) {
        out.push((await kv.get(`p.${p}`))?.json<{ committed: number }>().committed ?? 0);
      }
      return out;
    };
    // Every partition commits up to its last frame (partition 0 past the bad one too).
    const last = await waitFor(
      async () => {
        const c = await committed();
        return c.every((seq, p) => seq === lastSeq[p]) ? c : undefined;
      },
      "every partition committed past its frames",
      30_000,
      100,
    );
    assert.equal(last.length, PARTS);
    assert.ok(
      warned.some((m) => /cannot be loaded; the active one scores them/.test(m)),
      warned.join("; "),
    );
    assert.ok(!warned.some((m) => /batch failed/.test(m)), warned.join("; "));
  } finally {
    await Promise.race([worker.shutdown(2000), new Promise((r) => setTimeout(r, 4000))]);
    await nc.close();
    await server.remove();
    await model.remove();
    await rm(dataDir, { recursive: true, force: true });
  }
});
