// The "Your name" field of an operator form: asked for only where nobody signs in (AUTH_MODE=none).
import type { Child } from "hono/jsx";
import { useViewer } from "./viewer.tsx";

/**
 * "Your name" (the API's `by`, or `created_by`), up to the 200 characters the API takes (a longer
 * name would be cut short here), when the viewer types a name; nothing otherwise (a signed-in
 * operator is named by their identity). `which` tells screen readers the forms of one page apart;
 * `invalid` ties the field to its form's refusal (`invalidIf`).
 *
 * @example <NameField id="ack-by" value={typed.by} invalid={invalid("by")} />
 */
export function NameField(props: {
  id: string;
  name?: "by" | "created_by";
  which?: Child;
  value?: string;
  /** An optional name (the Health page's buttons: the audit then names the viewer). */
  optional?: boolean;
  invalid?: { "aria-invalid"?: "true"; "aria-describedby"?: string };
}) {
  if (!useViewer().typesName) return null;
  return (
    <>
      <label for={props.id}>Your name{props.which}</label>
      <input
        id={props.id}
        name={props.name ?? "by"}
        required={!props.optional}
        maxlength={200}
        autocomplete="name"
        value={props.value}
        {...props.invalid}
      />
    </>
  );
}
