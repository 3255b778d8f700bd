import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { nanos } from "@nats-io/nats-core";
import { startNatsServer } from "./_test/nats_server.ts";
import { DUPLICATE_WINDOW_MS, openNatsBus } from "./nats_bus.ts";

const options = {
  stream: "BUSTEST",
  partitions: 2,
  maxBytes: 1024 * 1024,
  maxAgeS: 86_400,
  name: "nats-bus-test",
};

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "nats-bus-test-"));
});
after(() => rm(dir, { recursive: true, force: true }));

test("openNatsBus takes a max age below the duplicate window as the window", async () => {
  const server = await startNatsServer();
  try {
    // The lowest NATS_STREAM_MAX_AGE_S the config allows.
    const bus = await openNatsBus({ ...options, url: server.url, maxAgeS: 60 });
    try {
      const { config } = await bus.jsm.streams.info(options.stream);
      assert.equal(config.max_age, nanos(60_000));
      assert.equal(config.duplicate_window, nanos(60_000));
    } finally {
      await bus.close();
    }
    // A longer max age again (a restart with the setting raised): the full window.
    const again = await openNatsBus({ ...options, url: server.url, maxAgeS: 3600 });
    try {
      const { config } = await again.jsm.streams.info(options.stream);
      assert.equal(config.duplicate_window, nanos(DUPLICATE_WINDOW_MS));
    } finally {
      await again.close();
    }
  } finally {
    await server.remove();
  }
});

test("openNatsBus names NATS_STREAM_MAX_BYTES when the server has less storage", async () => {
  const conf = join(dir, "small_store.conf");
  await writeFile(conf, "jetstream { max_file_store: 4MB }\n");
  const server = await startNatsServer(["-c", conf]);
  try {
    await assert.rejects(
      openNatsBus({ ...options, url: server.url, maxBytes: 64 * 1024 * 1024 }),
      (error: Error) => {
        assert.match(error.message, /NATS_STREAM_MAX_BYTES=67108864/);
        assert.match(error.message, /insufficient storage/);
        // The server's refusal still: a start-up stops on it rather than retrying.
        assert.equal(error.name, "JetStreamApiError");
        return true;
      },
    );
    // What fits the server's store is fine.
    const bus = await openNatsBus({ ...options, url: server.url });
    await bus.close();
  } finally {
    await server.remove();
  }
});
