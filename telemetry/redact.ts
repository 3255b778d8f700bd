// Hides the passwords in a connection URL before it is logged.

/**
 * `url` with each password (after a user, or a `password` parameter) replaced by `***`, for
 * logs. The user part runs to the authority's last `@`, so a password with an unescaped `@` is
 * hidden whole; a URL with no user (`postgres://:secret@host/db`) and each URL of a
 * comma-separated list (`nats://u:p@a:4222,nats://u:p@b:4222`) are covered too.
 */
export function redactUrl(url: string): string {
  return url
    .replace(
      /(^|,)([a-z][a-z0-9+.-]*:\/\/)([^/?#,]*)@/gi,
      (_, start: string, scheme: string, userinfo: string) => {
        const colon = userinfo.indexOf(":");
        return `${start}${scheme}${colon < 0 ? userinfo : `${userinfo.slice(0, colon)}:***`}@`;
      },
    )
    .replace(/([?&]password=)[^&#]*/gi, "$1***");
}
