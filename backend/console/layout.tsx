// The console's page frame: document head, navigation, skip link and the shared script and styles.
import type { Child } from "hono/jsx";
import { SilenceBanner } from "./silence_banner.tsx";
import { SignedIn } from "./viewer.tsx";

/** The page's place in the navigation; `error`: none (a request that ended in an error). */
export type Section = "now" | "overview" | "quality" | "silences" | "health" | "incident" | "error";

/** Every console page's headers: data only, scripts and styles from this origin, no inline script, no framing, forms stay here. */
export const SECURITY_HEADERS = {
  "Content-Security-Policy":
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "same-origin",
};

const NAV: { section: Section; href: string; label: string }[] = [
  { section: "now", href: "/", label: "Now" },
  { section: "overview", href: "/overview", label: "Overview" },
  { section: "quality", href: "/quality", label: "Quality" },
  { section: "silences", href: "/silences", label: "Silences" },
  { section: "health", href: "/status", label: "Health" },
];

/** Wraps a page: every page has one h1 (inside `children`) and the same navigation. */
export function Layout(props: {
  title: string;
  section: Section;
  children: Child;
  charts?: boolean;
}) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{`${props.title} · anomaly-stream`}</title>
        {/* No favicon request (a 404 would be a console error on every page). */}
        <link rel="icon" href="data:," />
        {props.charts ? <link rel="stylesheet" href="/assets/uPlot.min.css" /> : null}
        <link rel="stylesheet" href="/assets/console.css" />
        {props.charts ? <script src="/assets/uPlot.iife.min.js" defer /> : null}
        <script src="/assets/console.js" defer />
      </head>
      <body data-section={props.section}>
        <a class="skip" href="#main">
          Skip to content
        </a>
        <header class="top">
          <span class="brand">anomaly-stream</span>
          <nav aria-label="Console">
            <ul>
              {NAV.map((n) => (
                <li>
                  <a href={n.href} aria-current={n.section === props.section ? "page" : undefined}>
                    {n.label}
                  </a>
                </li>
              ))}
            </ul>
          </nav>
          <SignedIn />
        </header>
        <main id="main" tabindex={-1}>
          <SilenceBanner />
          {props.children}
        </main>
      </body>
    </html>
  );
}
