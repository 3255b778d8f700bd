// compose's `tokens` service: once per volume, an admin token (printed), the engine's token for pulling decisions, and the engine's ADMIN_TOKEN, INGEST_TOKEN and ALERT_SIGNING_SECRET (written for the services).
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { addToken } from "./token_file.ts";

const dir = process.env.TOKENS_DIR || "/app/.data/secrets";
const file = join(dir, "tokens.json");
const engineFile = join(dir, "engine_token");

await mkdir(dir, { recursive: true });
const admin = await addToken(file, { name: "admin", role: "admin" });
if (admin) {
  console.log(
    "The console runs with AUTH_MODE=token. Sign in at http://localhost:3000/signin with",
  );
  console.log(`  ${admin}`);
  console.log("(an admin token, shown only now; more with:");
  console.log(
    `  docker compose run --rm tokens backend/auth/token_cli.ts --file ${file} --name NAME --role operator)`,
  );
} else {
  console.log(`${file} already holds an admin token (shown when it was made): nothing changed`);
}
if (!existsSync(engineFile)) {
  // The engine only reads silences and verdicts: a viewer.
  const engine = await addToken(file, { name: "engine", role: "viewer" });
  if (engine) await writeFile(engineFile, `${engine}\n`, { mode: 0o600 });
}
// Shared by the engines and the backend only, each written once: the engine's ADMIN_TOKEN (its
// operations API), its INGEST_TOKEN (frames, which the backend's simulator sends) and the
// ALERT_SIGNING_SECRET its alerts are signed with (so nobody else can post alerts).
for (const name of ["engine_admin_token", "ingest_token", "alert_signing_secret"]) {
  const path = join(dir, name);
  if (!existsSync(path)) {
    await writeFile(path, `${randomBytes(32).toString("base64url")}\n`, { mode: 0o600 });
  }
}
