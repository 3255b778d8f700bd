// Bounds what an error message quotes of a client's text, so a short request cannot earn a huge answer.

/** The most characters of a client's text a message quotes: the longest stream id. */
export const QUOTE_LIMIT = 128;

/**
 * `text` when it is at most {@link QUOTE_LIMIT} characters, else its first ones, an ellipsis and
 * its length. A surrogate pair is never cut in half.
 *
 * @example
 * clipInput("x".repeat(4096)); // 128 x's, then "… (4096 characters)"
 */
export function clipInput(text: string): string {
  if (text.length <= QUOTE_LIMIT) return text;
  const last = text.charCodeAt(QUOTE_LIMIT - 1);
  const cut = last >= 0xd800 && last <= 0xdbff ? QUOTE_LIMIT - 1 : QUOTE_LIMIT;
  return `${text.slice(0, cut)}… (${text.length} characters)`;
}
