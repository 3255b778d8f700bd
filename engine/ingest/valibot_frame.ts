// The specification path: JSON.parse + the valibot frame contract. Tests check the scanner against it.
import * as v from "valibot";
import { HttpError } from "../../contracts/error.ts";
import {
  classifyFrameIssues,
  createFrameSchema,
  DEFAULT_STREAM_ID,
  frameProblemMessage,
} from "../../contracts/frame.ts";
import { clipInput } from "./_clip_input.ts";
import type { FeatureLayout } from "./feature_layout.ts";
import type { ScannedFrame } from "./json_frame_scanner.ts";

/** Decodes a JSON frame the straightforward way; same contract as {@link JsonFrameScanner}. */
export interface ValibotFrameDecoder {
  /** Parses UTF-8 `bytes`, validates, writes values in model order into `into`. Throws HttpError 400/422. */
  decode(bytes: Uint8Array, into: Float32Array): ScannedFrame;
}

/**
 * Creates the reference decoder: `TextDecoder` + `JSON.parse` + `createFrameSchema(names)` +
 * `classifyFrameIssues`. It builds the whole object, which is what the scanner avoids; the
 * micro-benchmark measures both.
 */
export function createValibotFrameDecoder(layout: FeatureLayout): ValibotFrameDecoder {
  const schema = createFrameSchema(layout.names);
  const utf8 = new TextDecoder();
  const names = layout.names;
  const features = new Set(names);
  return {
    decode(bytes, into) {
      let input: unknown;
      try {
        input = JSON.parse(utf8.decode(bytes));
      } catch (error) {
        throw new HttpError(
          400,
          "invalid_json",
          `body is not valid JSON: ${(error as Error).message}`,
        );
      }
      const result = v.safeParse(schema, input);
      if (!result.success) {
        const problem = classifyFrameIssues(result.issues, 5, features);
        // Keys clipped as the scanner's are (`frameProblem`). A timestamp's key is ours, and its
        // message may say what the value looks like (epoch seconds).
        const message =
          problem.code === "frame_invalid_timestamp"
            ? problem.message
            : frameProblemMessage(problem.code, problem.keys.map(clipInput), problem.count);
        throw new HttpError(422, problem.code, message);
      }
      const data = result.output.data as Record<string, number>;
      for (let i = 0; i < names.length; i++) into[i] = data[names[i]];
      return {
        streamId: result.output.stream_id ?? DEFAULT_STREAM_ID,
        timestamp: result.output.timestamp,
      };
    },
  };
}
