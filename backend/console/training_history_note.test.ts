// The mute and silence forms say that a silence also leaves its stream's frames out of the training history.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { createBackendApp } from "../app.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";
import { judgedIncident } from "../incidents/_fixtures.ts";

const NOW = Date.parse("2026-11-24T10:00:00Z");

let db: TestDatabase;
let app: ReturnType<typeof createBackendApp>;

before(async () => {
  db = await testTargets()[0].open();
  app = createBackendApp({ database: db, clock: { now: () => NOW } });
  await judgedIncident(app, {
    streamId: "line-a",
    sensor: { idx: 9, severity: 10, name: "TI-101" },
  });
});
after(() => db.dispose());

/** The text of the element with `id`, tags dropped, spaces folded. */
function textOf(page: string, id: string): string {
  const from = page.indexOf(` id="${id}"`);
  assert.ok(from >= 0, `the page has #${id}`);
  const start = page.lastIndexOf("<", from);
  const tag = /^<(\w+)/.exec(page.slice(start))![1];
  const end = page.indexOf(`</${tag}>`, from);
  return page
    .slice(page.indexOf(">", from) + 1, end)
    .replace(/<[^>]+>/g, "")
    .replace(/\s+/g, " ")
    .trim();
}

const SAID =
  /frames are also left out of the training history.*\(a retrained model learns nothing from them\)/;

test("the Quality page's mute form says a muted sensor leaves its stream's frames out of training", async () => {
  const page = await (await app.request("/quality?weeks=4")).text();
  const row = page.slice(page.indexOf('<tr data-stream="line-a" data-feature-idx="9">'));
  const button = /<button type="submit"[^>]*>Mute this sensor<\/button>/.exec(row);
  assert.ok(button, row.slice(0, 2000));
  // Its name stays; the effect is its description, read when the button is reached.
  assert.match(button[0], /aria-label="Mute this sensor: TI-101 on line-a"/);
  const described = /aria-describedby="([^"]+)"/.exec(button[0]);
  assert.ok(described, button[0]);
  assert.match(textOf(page, described[1]), SAID);
});

test("the Silences page's create form says a silence leaves its streams' frames out of training", async () => {
  const page = await (await app.request("/silences")).text();
  const form = page.slice(page.indexOf('<form method="post" action="/silences"'));
  const sensors = /<textarea id="silence-sensors"[^>]*>/.exec(form);
  assert.ok(sensors, form.slice(0, 2000));
  const described = /aria-describedby="([^"]+)"/.exec(sensors[0]);
  assert.ok(described, sensors[0]);
  assert.ok(form.indexOf(`id="${described[1]}"`) < form.indexOf("</form>"), "in the form");
  assert.match(textOf(page, described[1]), SAID);
});
