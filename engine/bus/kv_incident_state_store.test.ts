import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import type { StoredIncidentState } from "../alert/incident_state_store.ts";
import { type NatsServer, startNatsServer } from "./_test/nats_server.ts";
import { KvIncidentStateStore } from "./kv_incident_state_store.ts";

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

test("kvIncidentStateStore keeps each model's streams of a partition apart, the default model's keys as before", async () => {
  const kv = await new Kvm(nc).create("INC_incidents", { history: 1 });
  const main = new KvIncidentStateStore(kv, 3);
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
  // The default model's key is the one a worker without routes always wrote.
  assert.equal((await kv.get("p3.boiler=2E1"))?.operation, "PUT");

  await packaging.save([{ streamId: "line-b:1", state: undefined }], true);
  assert.deepEqual(ids(await packaging.load()), []);
  assert.deepEqual(ids(await main.load()), [["boiler.1", "a"]]);
});
