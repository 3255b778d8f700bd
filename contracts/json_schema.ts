// Writes the JSON Schema of the frame and alert contracts next to this file, or checks them.
// Usage: `npm run schemas` (write) or `npm run schemas -- --check` (exit 1 when stale).

import { readFile, writeFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { toJsonSchema } from "@valibot/to-json-schema";
import { alertInputSchema, alertSchema } from "./alert.ts";
import { commandLine } from "./command_line.ts";
import { frameEnvelopeSchema } from "./frame.ts";

const USAGE = `usage: npm run schemas [-- --check]

Writes contracts/frame.schema.json, alert.schema.json and alert-input.schema.json from the valibot
contracts; --check writes nothing and exits 1 when a committed file is stale.`;

/** The published schemas by file name, rendered as the committed files are. */
export function renderJsonSchemas(): Record<string, string> {
  const render = (title: string, description: string, schema: Parameters<typeof toJsonSchema>[0]) =>
    `${JSON.stringify({ title, description, ...toJsonSchema(schema, { errorMode: "ignore" }) }, null, 2)}\n`;
  return {
    "frame.schema.json": render(
      "Frame",
      "POST /data-enqueue body. The engine additionally requires exactly the model's feature names in `data`.",
      frameEnvelopeSchema,
    ),
    "alert.schema.json": render(
      "Alert",
      "Alert as the engine sends it (every field required).",
      alertSchema,
    ),
    "alert-input.schema.json": render(
      "AlertInput",
      "Alert as the backend accepts it (original fields required, ours optional).",
      alertInputSchema,
    ),
  };
}

const isMain =
  import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith("json_schema.ts");
if (isMain) {
  // Anything else than --check or --help is a mistake (exit 2), never a reason to write.
  const { parsed } = commandLine("schemas", USAGE, (args) =>
    parseArgs({
      args,
      options: { check: { type: "boolean" }, help: { type: "boolean", short: "h" } },
    }),
  );
  const check = parsed.values.check === true;
  let stale = 0;
  for (const [name, text] of Object.entries(renderJsonSchemas())) {
    const url = new URL(name, import.meta.url);
    if (check) {
      const current = await readFile(url, "utf8").catch(() => "");
      if (current !== text) {
        console.error(`${name} is stale: run npm run schemas`);
        stale++;
      }
    } else {
      await writeFile(url, text);
      console.log(`wrote contracts/${name}`);
    }
  }
  process.exit(stale ? 1 : 0);
}
