// The console-token form (CONSOLE_TOKEN without sign-in), folded, on every page whose forms act.

/** Sets the console token cookie (`POST /console-token`), then goes back to `returnTo`. */
export function ConsoleTokenForm(props: {
  returnTo: string;
  /** The fold's label (default "Console token"). */
  summary?: string;
  /** The token field's id, unique on its page (default `console-token`). */
  id?: string;
}) {
  const id = props.id ?? "console-token";
  return (
    <details>
      <summary>{props.summary ?? "Console token"}</summary>
      <form method="post" action="/console-token" class="token">
        <input type="hidden" name="return" value={props.returnTo} />
        <label for={id}>Token (kept in a cookie for this site)</label>
        <input id={id} name="token" type="password" required autocomplete="off" />
        <button type="submit">Use token</button>
      </form>
    </details>
  );
}
