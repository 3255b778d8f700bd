// `npm run token -- --name NAME --role viewer|operator|admin [--expires-days N] [--file tokens.json]`: makes an API token, prints it once, stores only its hash.
import { existsSync } from "node:fs";
import { readFile, rename, writeFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { type ApiToken, parseApiTokens, ROLES, type Role, tokenDigest } from "../../contracts/auth.ts";

const { values } = parseArgs({
  options: {
    name: { type: "string" },
    role: { type: "string" },
    "expires-days": { type: "string" },
    file: { type: "string", default: process.env.API_TOKENS_FILE || "tokens.json" },
    remove: { type: "string" },
    "if-missing": { type: "boolean", default: false },
  },
});

function fail(message: string): never {
  console.error(`token: ${message}`);
  process.exit(1);
}

const file = values.file as string;
let tokens: ApiToken[] = [];
if (existsSync(file)) {
  try {
    tokens = parseApiTokens(await readFile(file, "utf8"));
  } catch (error) {
    fail(`${file}: ${(error as Error).message}`);
  }
}

/** Writes the file whole (a new file renamed over the old): a reader never sees half of it. */
async function save(list: ApiToken[]): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(list, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, file);
}

if (values.remove !== undefined) {
  const left = tokens.filter((t) => t.name !== values.remove);
  if (left.length === tokens.length) fail(`no token named ${values.remove} in ${file}`);
  await save(left);
  console.log(`removed ${values.remove} from ${file}: it is refused from now on`);
  process.exit(0);
}

const name = values.name ?? fail("--name is required (who or what the token is for)");
const role = (values.role ?? fail(`--role is required: ${ROLES.join("|")}`)) as Role;
if (!ROLES.includes(role)) fail(`--role must be one of ${ROLES.join("|")}, got ${role}`);
if (tokens.some((t) => t.name === name)) {
  if (values["if-missing"]) {
    console.log(`${file} already holds a token named ${name}: nothing changed`);
    process.exit(0);
  }
  fail(`${file} already holds a token named ${name} (remove it first with --remove ${name})`);
}
let expiresAt: string | undefined;
if (values["expires-days"] !== undefined) {
  const days = Number(values["expires-days"]);
  if (!(days > 0 && days <= 3650)) fail("--expires-days must be a number of days 0..3650");
  expiresAt = new Date(Date.now() + days * 86_400_000).toISOString();
}
const secret = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");
const entry: ApiToken = { name, role, sha256: await tokenDigest(secret), expires_at: expiresAt };
try {
  parseApiTokens(JSON.stringify([...tokens, entry]));
} catch (error) {
  fail((error as Error).message);
}
await save([...tokens, entry]);
console.log(`token for ${name} (${role}${expiresAt ? `, expires ${expiresAt}` : ""}), stored hashed in ${file}:`);
console.log(secret);
console.log("It is shown only now. Use it as 'Authorization: Bearer <token>' or in the console's sign-in form.");
