// Valibot schemas for stream retirements: the body that retires a stream or ends its retirement, the list query, the stream id.
import * as v from "valibot";
import { HttpError } from "../../contracts/error.ts";
import { STREAM_ID_PATTERN } from "../../contracts/frame.ts";
import { operatorText } from "../../contracts/storable.ts";
import { intParam } from "../alerts/_query_params.ts";

/** Where a retirement stands: in force, or ended (by a person, or by the stream sending again). */
export type RetirementState = "in_force" | "ended";

const text = operatorText;

/**
 * `POST /api/v1/streams/:stream_id/retirement` and `.../retirement/end`: why, and who (the
 * signed-in name replaces `by`; without sign-in it is typed).
 */
export const retirementActionSchema = v.strictObject(
  { reason: text("a reason", 500), by: text("a name", 200) },
  "a JSON object: the body",
);

export type RetirementAction = v.InferOutput<typeof retirementActionSchema>;

/** `GET /api/v1/streams/retirements`: `in_force` (the default) or `all`. */
export const retirementListSchema = v.object({
  state: v.optional(v.picklist(["in_force", "all"], "one of in_force, all"), "in_force"),
  limit: v.optional(intParam(1, 500), "100"),
});

/** The `:stream_id` path parameter, or 400 `invalid_request`. */
export function streamIdParam(raw: string | undefined): string {
  if (raw === undefined || !STREAM_ID_PATTERN.test(raw)) {
    throw new HttpError(
      400,
      "invalid_request",
      "'stream_id' must be 1..128 characters of A-Z a-z 0-9 . _ : -",
    );
  }
  return raw;
}
