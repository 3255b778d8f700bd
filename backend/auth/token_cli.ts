// `npm run token -- --name NAME --role viewer|operator|admin [--expires-days N] [--file tokens.json]`: makes an API token, prints it once, stores only its hash. `--remove NAME` takes one out.
import { existsSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { parseArgs } from "node:util";
import * as v from "valibot";
import { apiTokenSchema, ROLES, type Role } from "../../contracts/auth.ts";
import { addToken, readTokens, writeTokens } from "./token_file.ts";

function fail(message: string): never {
  console.error(`token: ${message}`);
  process.exit(1);
}

const USAGE =
  "usage: npm run token -- --name NAME --role viewer|operator|admin [--expires-days N] [--file tokens.json] | --remove NAME [--file tokens.json]";

const options = {
  name: { type: "string" },
  role: { type: "string" },
  "expires-days": { type: "string" },
  file: { type: "string", default: process.env.API_TOKENS_FILE || "tokens.json" },
  remove: { type: "string" },
  "if-missing": { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
} as const;

let parsed: ReturnType<typeof parseArgs<{ options: typeof options }>>;
try {
  parsed = parseArgs({ options });
} catch (error) {
  // An unknown or malformed option: say which, and how it is used, without a stack trace.
  fail(`${(error as Error).message}\n${USAGE}`);
}
const { values } = parsed;
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}

const file = values.file as string;
// The file is replaced through a temporary one beside it: a missing folder would be reported
// with that temporary name, not the one the user gave.
const folder = dirname(file);
if (!existsSync(folder)) fail(`--file ${file}: folder ${folder} does not exist`);
if (!statSync(folder).isDirectory()) fail(`--file ${file}: ${folder} is not a folder`);
try {
  await readTokens(file);
} catch (error) {
  fail(`${file}: ${(error as Error).message}`);
}

if (values.remove !== undefined) {
  const tokens = await readTokens(file);
  const left = tokens.filter((t) => t.name !== values.remove);
  if (left.length === tokens.length) fail(`no token named ${values.remove} in ${file}`);
  await writeTokens(file, left);
  console.log(`removed ${values.remove} from ${file}: it is refused from now on`);
  process.exit(0);
}

const name = values.name ?? fail("--name is required (who or what the token is for)");
const nameCheck = v.safeParse(apiTokenSchema.entries.name, name);
if (!nameCheck.success) fail(`--name ${nameCheck.issues[0].message}, got '${name}'`);
const role = (values.role ?? fail(`--role is required: ${ROLES.join("|")}`)) as Role;
if (!ROLES.includes(role)) fail(`--role must be one of ${ROLES.join("|")}, got ${role}`);
let expiresAt: string | undefined;
if (values["expires-days"] !== undefined) {
  const days = Number(values["expires-days"]);
  if (!(days > 0 && days <= 3650)) {
    fail(
      `--expires-days must be a number of days above 0 and at most 3650, got '${values["expires-days"]}'`,
    );
  }
  expiresAt = new Date(Date.now() + days * 86_400_000).toISOString();
}
let secret: string | undefined;
try {
  secret = await addToken(file, { name, role, expiresAt });
} catch (error) {
  fail(`${file}: ${(error as Error).message}`);
}
if (secret === undefined) {
  if (values["if-missing"]) {
    console.log(`${file} already holds a token named ${name}: nothing changed`);
    process.exit(0);
  }
  fail(`${file} already holds a token named ${name} (remove it first with --remove ${name})`);
}
console.log(
  `token for ${name} (${role}${expiresAt ? `, expires ${expiresAt}` : ""}), stored hashed in ${file}:`,
);
console.log(secret);
console.log(
  "It is shown only now. Use it as 'Authorization: Bearer <token>' or in the console's sign-in form.",
);
