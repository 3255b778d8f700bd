// Notifications across a real backend process killed with SIGKILL, and a bad routes file refused at start-up.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { verifyWebhook } from "../../contracts/webhook_signature.ts";
import { freePort } from "../_test/free_port.ts";
import { ownPostgresDatabase } from "../_test/own_database.ts";
import { NODE_TS, type ServiceProcess, spawnService, waitFor } from "../_test/spawn_service.ts";
import { post } from "../alerts/_fixtures.ts";
import { incidentAlert } from "../incidents/_fixtures.ts";
import { type Received, startReceiver } from "./_test_receiver.ts";

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "notify-restart-"));
});
after(() => rm(dir, { recursive: true, force: true }));

async function startBackend(env: Record<string, string>): Promise<ServiceProcess> {
  const service = spawnService([...NODE_TS, "backend/main.ts"], env);
  await service.waitForLog((l) => l.msg === "backend listening", 90_000);
  return service;
}

/** The database each run uses: PGlite in a folder always, a fresh PostgreSQL database when configured. */
const databases: {
  kind: string;
  env(): Promise<{ env: Record<string, string>; drop(): Promise<void> }>;
}[] = [
  {
    kind: "pglite",
    async env() {
      return {
        env: { DATABASE_URL: "", PGLITE_DATA_DIR: join(dir, "pglite") },
        drop: async () => {},
      };
    },
  },
];
if (process.env.DATABASE_URL) {
  const url = process.env.DATABASE_URL;
  databases.push({
    kind: "postgres",
    env: () => ownPostgresDatabase(url, "notify_kill"),
  });
}

for (const database of databases) {
  describe(`notifications across a kill -9 on ${database.kind}`, () => {
    test("each incident event reaches each route under one webhook-id, answered once, after SIGKILL mid-delivery and before delivery", async () => {
      const receiver = await startReceiver();
      const { env: dbEnv, drop } = await database.env();
      let killed = false;
      // Before the kill, one route's receiver holds every request open (the kill lands
      // mid-delivery) and the other refuses (the messages wait in the outbox for a retry).
      receiver.answer = (r) => {
        if (killed) return { status: 200 };
        return r.path === "/held" ? "hold" : { status: 503 };
      };
      const configPath = join(dir, `notify-${database.kind}.json`);
      await writeFile(
        configPath,
        JSON.stringify({
          routes: [
            {
              name: "held",
              match: { stream: "kill-*" },
              webhook: { url: `${receiver.url}/held`, secret_env: "HELD_SECRET", timeout: "5s" },
              retry: { attempts: 20, initial: "200ms", max: "1s" },
            },
            {
              name: "refused",
              match: { stream: "kill-*" },
              webhook: { url: `${receiver.url}/refused`, format: "slack" },
              retry: { attempts: 20, initial: "200ms", max: "1s" },
            },
          ],
        }),
      );
      const port = String(await freePort());
      const env = {
        ...dbEnv,
        HOST: "127.0.0.1",
        PORT: port,
        NOTIFY_CONFIG: configPath,
        HELD_SECRET: SECRET,
        ENGINE_URL: "http://127.0.0.1:9",
      };
      const base = `http://127.0.0.1:${port}`;
      const send = async (alert: unknown) => {
        const res = await fetch(`${base}/api/v1/alert`, post(alert));
        assert.equal(res.status, 201, await res.text());
      };
      const alerts = [1, 2, 3, 4].map((i) =>
        incidentAlert({
          incidentId: crypto.randomUUID(),
          start: new Date().toISOString(),
          streamId: `kill-${i}`,
          event: "opened",
          sensors: [{ idx: i, severity: 10 + i }],
        }),
      );
      const distinct = (rs: Received[]) => new Set(rs.map((r) => r.id)).size;
      const first = await startBackend(env);
      let second: ServiceProcess | undefined;
      try {
        for (const alert of alerts.slice(0, 3)) await send(alert);
        await receiver.until(
          () => distinct(receiver.on("/held")) === 3 && distinct(receiver.on("/refused")) === 3,
          "three held and three refused deliveries",
        );
        // Stored and acknowledged, then the process dies before it can be delivered.
        await send(alerts[3]);
        first.child.kill("SIGKILL");
        assert.equal(await first.stop(), null);
        const heldBefore = new Set(receiver.on("/held").map((r) => r.id));
        // The fourth may have been sent too (the route takes four at once): held all the same.
        assert.ok(heldBefore.size >= 3, "the kill landed while deliveries were in flight");
        killed = true;

        second = await startBackend(env);
        const answered = (path: string) => receiver.on(path).filter((r) => r.answered === 200);
        await receiver.until(
          () => distinct(answered("/held")) === 4 && distinct(answered("/refused")) === 4,
          "every event delivered on both routes",
          60_000,
        );
        // Settled on the Health page: nothing pending, four delivered per route.
        let rows = "";
        await waitFor(async () => {
          const page = await (await fetch(`${base}/status`)).text();
          rows = (page.match(/<tr data-route=[^>]*>/g) ?? []).join(" ");
          const done = (route: string) =>
            page.includes(
              `data-route="${route}" data-pending="0" data-delivered="4" data-dead="0"`,
            );
          return done("held") && done("refused") ? true : undefined;
        }, "the Health page to show every message delivered").catch((error) => {
          throw new Error(
            `${error.message}; last seen: ${rows}\n${second?.lines.slice(-30).join("\n")}`,
          );
        });

        for (const path of ["/held", "/refused"]) {
          const ok = answered(path);
          assert.equal(ok.length, 4, `${path}: one answered delivery per event`);
          assert.equal(distinct(ok), 4);
          // Every try of a message carried the same id: the receiver saw exactly one distinct
          // id per event, however many times it was tried.
          assert.equal(distinct(receiver.on(path)), 4);
        }
        const held = answered("/held");
        assert.deepEqual(
          held.map((r) => JSON.parse(r.body).data.event_id).sort(),
          alerts.map((a) => a.alert_id).sort(),
        );
        for (const r of held)
          await verifyWebhook({ secret: SECRET, headers: r.headers, body: r.body });
        assert.deepEqual(
          answered("/refused")
            .map((r) => /on (kill-\d)/.exec(JSON.parse(r.body).text)?.[1])
            .sort(),
          ["kill-1", "kill-2", "kill-3", "kill-4"],
        );
        // The messages cut off by the kill were delivered again under the ids they had before.
        for (const id of heldBefore) assert.ok(answered("/held").some((r) => r.id === id));

        assert.equal(await second.stop("SIGTERM"), 0);
      } finally {
        await first.stop("SIGKILL");
        await second?.stop("SIGKILL");
        await receiver.close();
        await drop();
      }
    });
  });
}

describe("a bad routes file", () => {
  // The fourth element: text the output must not hold (a secret in the file).
  const cases: [string, unknown, RegExp, string?][] = [
    [
      "a field of the wrong type",
      {
        routes: [
          { name: "ops", match: { min_severity: "high" }, webhook: { url: "https://x.example" } },
        ],
      },
      /route "ops" \(routes\[0\]\): 'match\.min_severity' must be number, got "high"/,
    ],
    [
      "an unknown field",
      {
        routes: [
          { name: "ok", webhook: { url: "https://x.example" } },
          { name: "chat", webhook: { url: "https://x.example", fromat: "slack" } },
        ],
      },
      /route "chat" \(routes\[1\]\): 'webhook\.fromat' is not a known field/,
    ],
    [
      "a webhook URL without its scheme",
      { routes: [{ name: "chat", webhook: { url: "hooks.slack.com/services/T0/B0/XYZSECRET" } }] },
      /route "chat" \(routes\[0\]\): 'webhook\.url' must be an http\(s\) URL/,
      "XYZSECRET",
    ],
    [
      "a console URL without its scheme",
      { console_url: "anomaly.plant.example", routes: [] },
      /'console_url' must be an http\(s\) URL/,
      "anomaly.plant.example",
    ],
    [
      "a secret in secret_env",
      {
        routes: [
          {
            name: "ops",
            webhook: {
              url: "https://x.example",
              secret_env: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            },
          },
        ],
      },
      /route "ops" \(routes\[0\]\): 'webhook\.secret_env' holds a secret \(whsec_…, not quoted\)/,
      "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    ],
  ];
  for (const [what, file, message, secret] of cases) {
    test(`stops the backend at start-up naming the route and field: ${what}`, async () => {
      const path = join(dir, `bad-${what.replaceAll(" ", "-")}.json`);
      await writeFile(path, JSON.stringify(file));
      const service = spawnService([...NODE_TS, "backend/main.ts"], {
        NOTIFY_CONFIG: path,
        PORT: String(await freePort()),
        HOST: "127.0.0.1",
      });
      // `close`, not `exit`: every line of its output has been read by then.
      const code = await new Promise((resolve) => service.child.once("close", resolve));
      assert.equal(code, 1);
      const output = service.lines.join("\n");
      assert.match(output, message);
      if (secret) assert.ok(!output.includes(secret), output);
      // Reported as a bad routes file, not a crash with a stack trace.
      assert.ok(!/\bat .*\.ts:\d+/.test(output), output);
      assert.ok(!service.lines.some((l) => l.includes("backend listening")));
    });
  }
});
