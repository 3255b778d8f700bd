import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import type { StoredIncidentState } from "../alert/incident_state_store.ts";
import { type NatsServer, startNatsServer } from "./_test/nats_server.ts";
import { KvIncidentStateStore, moveLegacyKvStates } from "./kv_incident_state_store.ts";

let server: NatsServer;
let nc: NatsConnection;

before(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
});

after(async () => {
  await nc?.close();
  await server?.remove();
});

/** A stored state told apart by its alert id. */
const state = (id: string): StoredIncidentState => ({
  alerts: [{ id, body: "{}", traceparent: undefined }],
});
const ids = (states: Map<string, StoredIncidentState>) =>
  [...states].map(([stream, s]) => [stream, s.alerts?.[0].id]).sort();

test("kvIncidentStateStore keeps each model's streams of a partition apart under the model's own keys", async () => {
  const kv = await new Kvm(nc).create("INC_incidents", { history: 1 });
  const main = new KvIncidentStateStore(kv, 3, "boiler");
  const packaging = new KvIncidentStateStore(kv, 3, "packaging");
  const dotted = new KvIncidentStateStore(kv, 3, "pack.v2");
  const otherPartition = new KvIncidentStateStore(kv, 4, "packaging");
  await main.save([{ streamId: "boiler.1", state: state("a") }], true);
  await packaging.save([{ streamId: "line-b:1", state: state("b") }], true);
  await dotted.save([{ streamId: "line-b-2", state: state("c") }], true);
  await otherPartition.save([{ streamId: "line-b-3", state: state("d") }], true);

  assert.deepEqual(ids(await main.load()), [["boiler.1", "a"]]);
  assert.deepEqual(ids(await packaging.load()), [["line-b:1", "b"]]);
  assert.deepEqual(ids(await dotted.load()), [["line-b-2", "c"]]);
  assert.deepEqual(ids(await otherPartition.load()), [["line-b-3", "d"]]);
  assert.equal((await kv.get("p3.boiler.boiler=2E1"))?.operation, "PUT");

  await packaging.save([{ streamId: "line-b:1", state: undefined }], true);
  assert.deepEqual(ids(await packaging.load()), []);
  assert.deepEqual(ids(await main.load()), [["boiler.1", "a"]]);
});

test("moveLegacyKvStates moves an earlier release's default-model keys to each state's model", async () => {
  const kv = await new Kvm(nc).create("LEGACY_incidents", { history: 1 });
  const named = (id: string, name: string): StoredIncidentState => ({
    ...state(id),
    model: { name, version: "1", features: "f" },
  });
  // What an earlier release wrote for its default model (the boiler then), partition 2.
  await kv.put("p2.kiln=2E1", JSON.stringify(named("k", "boiler")));
  await kv.put("p2.line-b", JSON.stringify(named("old-b", "packaging")));
  await kv.put("p2.unnamed", JSON.stringify(state("u")));
  await kv.put("p5.other", JSON.stringify(named("o", "boiler")));
  // The packaging line, routed in between, saved a newer state of line-b under its own keys.
  await new KvIncidentStateStore(kv, 2, "packaging").save(
    [{ streamId: "line-b", state: named("new-b", "packaging") }],
    true,
  );

  assert.equal(await moveLegacyKvStates(kv, 2, "boiler"), 2);
  assert.deepEqual(ids(await new KvIncidentStateStore(kv, 2, "boiler").load()), [
    ["kiln.1", "k"],
    ["unnamed", "u"],
  ]);
  assert.deepEqual(ids(await new KvIncidentStateStore(kv, 2, "packaging").load()), [
    ["line-b", "new-b"],
  ]);
  const legacy: string[] = [];
  for await (const key of await kv.keys("p2.*")) legacy.push(key);
  assert.deepEqual(legacy, [], "the old keys are gone");
  assert.equal((await kv.get("p5.other"))?.operation, "PUT", "another partition's are its owner's");
  assert.equal(await moveLegacyKvStates(kv, 2, "boiler"), 0);
});
