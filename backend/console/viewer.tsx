// Who is looking at a console page: pages show their name, hide the forms their role cannot use, and ask for a typed name only without sign-in.
import type { Context, MiddlewareHandler } from "hono";
import { createContext, useContext } from "hono/jsx";
import type { HtmlEscapedString } from "hono/utils/html";
import { type AuthMode, hasRole, type Role } from "../../contracts/auth.ts";
import type { Auth } from "../auth/auth.ts";

export interface Viewer {
  name: string;
  role: Role;
  method: AuthMode;
  /** Whether the forms that act (acknowledge, verdict, silences, mute) are shown. */
  canAct: boolean;
  /** Without sign-in (`AUTH_MODE=none`) nobody is verified: forms ask for a name. */
  typesName: boolean;
}

const NOBODY_SIGNED_IN: Viewer = {
  name: "anonymous",
  role: "admin",
  method: "none",
  canAct: true,
  typesName: true,
};

const ViewerContext = createContext<Viewer>(NOBODY_SIGNED_IN);

declare module "hono" {
  interface ContextVariableMap {
    /** Set by {@link viewerOf}'s middleware for the console's pages. */
    viewer?: Viewer;
  }
}

/** Middleware for the console's routes: notes who is asking, for the page being rendered. */
export function viewerOf(auth: Auth): MiddlewareHandler {
  return async function provideViewer(c, next) {
    const who = auth.identity(c);
    if (who) {
      c.set("viewer", {
        name: who.name,
        role: who.role,
        method: who.method,
        canAct: hasRole(who.role, "operator"),
        typesName: who.method === "none",
      });
    }
    await next();
  };
}

/** The page with its viewer in reach of every component. */
export function withViewer(
  c: Context,
  element: HtmlEscapedString | Promise<HtmlEscapedString>,
): HtmlEscapedString {
  return (
    <ViewerContext.Provider value={c.get("viewer") ?? NOBODY_SIGNED_IN}>
      {element as unknown as HtmlEscapedString}
    </ViewerContext.Provider>
  ) as unknown as HtmlEscapedString;
}

/** The viewer of the page being rendered. */
export function useViewer(): Viewer {
  return useContext(ViewerContext);
}

/** Said in place of a form the viewer's role cannot use. */
export function NotAllowed(props: { what: string }) {
  const viewer = useViewer();
  return (
    <p class="muted" data-role-hidden="true">
      {props.what} needs the operator role; you are signed in as {viewer.name} ({viewer.role}).
    </p>
  );
}

/** The signed-in person and a sign-out button, in the page header (nothing without sign-in). */
export function SignedIn() {
  const viewer = useViewer();
  if (viewer.method === "none") return null;
  return (
    <form method="post" action="/signout" class="signed-in">
      <span>
        Signed in as <strong>{viewer.name}</strong> ({viewer.role})
      </span>{" "}
      <button type="submit">Sign out</button>
    </form>
  );
}
