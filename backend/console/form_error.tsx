// A refused form's message, shown beside the form it refused (which keeps what was typed).

/** A refused form submission: why, and its fields as typed, to be shown again in that form. */
export interface Refusal {
  message: string;
  values: Record<string, string>;
}

/**
 * The message of a refused form, announced (`role="alert"`) where the form is: the Incident
 * page's acknowledgement and verdict, a Quality row's mute, a silence's expiry.
 *
 * @example <FormError id="verdict-error" prefix="Nothing was recorded: " message={error} />
 */
export function FormError(props: { id?: string; prefix?: string; message: string }) {
  return (
    <p class="error" role="alert" id={props.id}>
      {props.prefix}
      {props.message}
    </p>
  );
}
