// The actor of an action taken without sign-in (AUTH_MODE=none): nobody verified, the typed name kept.
import type { Identity } from "../../contracts/auth.ts";

/** An unverified actor named `typed` (what was typed into the form or body). */
export function unverified(typed: string): Identity {
  return { subject: "anonymous", name: typed, role: "admin", method: "none" };
}
