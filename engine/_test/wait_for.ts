// Waits on a condition with a deadline: the only way tests wait for something asynchronous.

/**
 * Polls `predicate` every `intervalMs` until it returns truthy (resolving with that value) or
 * `timeoutMs` passes (rejecting with a message naming `what`).
 */
export async function waitFor<T>(
  predicate: () => T | Promise<T>,
  what: string,
  timeoutMs = 10_000,
  intervalMs = 10,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
