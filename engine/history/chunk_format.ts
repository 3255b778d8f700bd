// The history's chunk files: framed records (magic, length, CRC-32) a reader can resume after a torn or corrupt one.
import { crc32 } from "node:zlib";

/** Every record starts with these four bytes ("HIS1" little-endian). */
export const RECORD_MAGIC = 0x31534948;
/** Magic, payload length, CRC-32 of the payload. */
export const RECORD_HEADER_BYTES = 12;
/** A payload larger than this is taken for a corrupt length field (1 GiB). */
const MAX_PAYLOAD = 1 << 30;

const TYPE_HEADER = 1;
const TYPE_FRAME = 2;

/** What a chunk says about itself in its first record: which model's frames it holds. */
export interface ChunkHeader {
  model: string;
  n_features: number;
  /** sha256 of the feature names joined by "\n": chunks of other features are not mixed in. */
  features_sha256: string;
  created_at: string;
}

/** One recorded frame. */
export interface HistoryFrame {
  streamId: string;
  /** Epoch ms of the frame. */
  timestamp: number;
  /** The recorder's run (a random id per engine start): `seq` counts within it. */
  session: number;
  /** Per stream and session, the frame's position among its scored windows: consecutive = adjacent. */
  seq: number;
  /** The incident the frame's window belonged to, or "" (none). */
  incident: string;
  values: Float32Array;
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

function frame(type: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(RECORD_HEADER_BYTES + 1 + body.length);
  out[RECORD_HEADER_BYTES] = type;
  out.set(body, RECORD_HEADER_BYTES + 1);
  const payload = out.subarray(RECORD_HEADER_BYTES);
  const view = new DataView(out.buffer);
  view.setUint32(0, RECORD_MAGIC, true);
  view.setUint32(4, payload.length, true);
  view.setUint32(8, crc32(payload), true);
  return out;
}

/** The record that opens every chunk. */
export function encodeHeader(header: ChunkHeader): Uint8Array {
  return frame(TYPE_HEADER, utf8.encode(JSON.stringify(header)));
}

/**
 * One frame as a record: `type, pad, stream length (u16), incident length (u16), pad, session,
 * seq (u32), timestamp (f64), n (u32)`, the two strings, padding to 4, then `n` float32
 * readings, all little-endian. One allocation, one copy of the readings.
 */
export function encodeFrame(f: HistoryFrame): Uint8Array {
  const stream = utf8.encode(f.streamId);
  const incident = utf8.encode(f.incident);
  if (stream.length > 0xffff || incident.length > 0xffff) {
    throw new RangeError("'streamId' and 'incident' must be at most 65,535 bytes");
  }
  const fixed = 27;
  const strings = stream.length + incident.length;
  const pad = (4 - ((RECORD_HEADER_BYTES + fixed + strings) % 4)) % 4;
  const body = new Uint8Array(fixed - 1 + strings + pad + 4 * f.values.length);
  const view = new DataView(body.buffer);
  view.setUint16(1, stream.length, true);
  view.setUint16(3, incident.length, true);
  view.setUint32(6, f.session >>> 0, true);
  view.setUint32(10, f.seq >>> 0, true);
  view.setFloat64(14, f.timestamp, true);
  view.setUint32(22, f.values.length, true);
  body.set(stream, 26);
  body.set(incident, 26 + stream.length);
  const at = 26 + strings + pad;
  body.set(new Uint8Array(f.values.buffer, f.values.byteOffset, f.values.byteLength), at);
  return frame(TYPE_FRAME, body);
}

/** What one chunk file holds, and what of it could not be read. */
export interface DecodedChunk {
  header: ChunkHeader | undefined;
  frames: HistoryFrame[];
  /** Records skipped: a bad checksum, a torn end, an unreadable body. */
  skipped: number;
  /** Bytes not part of any good record. */
  skippedBytes: number;
}

/** Where a frame record's strings and readings lie, or undefined when its body does not add up. */
function frameLayout(body: Uint8Array) {
  if (body.length < 26) return undefined;
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const streamLen = view.getUint16(1, true);
  const incidentLen = view.getUint16(3, true);
  const n = view.getUint32(22, true);
  const strings = streamLen + incidentLen;
  const pad = (4 - ((RECORD_HEADER_BYTES + 27 + strings) % 4)) % 4;
  const at = 26 + strings + pad;
  if (at + 4 * n !== body.length) return undefined;
  return { view, streamLen, strings, n, at };
}

function decodePayload(payload: Uint8Array): ChunkHeader | HistoryFrame | undefined {
  const type = payload[0];
  const body = payload.subarray(1);
  if (type === TYPE_HEADER) return JSON.parse(fromUtf8.decode(body)) as ChunkHeader;
  const frame = type === TYPE_FRAME ? frameLayout(body) : undefined;
  if (!frame) return undefined;
  const { view, streamLen, strings, n, at } = frame;
  return {
    streamId: fromUtf8.decode(body.subarray(26, 26 + streamLen)),
    incident: fromUtf8.decode(body.subarray(26 + streamLen, 26 + strings)),
    session: view.getUint32(6, true),
    seq: view.getUint32(10, true),
    timestamp: view.getFloat64(14, true),
    // A copy: the chunk's bytes can go once it is decoded.
    values: new Float32Array(body.slice(at, at + 4 * n).buffer),
  };
}

/**
 * Calls `take` with the payload of every record whose frame and checksum are good; `take` says
 * whether the payload parsed. A record that fails either, or ends past the end of the file (a
 * crash mid-write), is skipped: the walk looks for the next magic after it, so one bad record
 * never hides the rest. Returns what was skipped.
 */
function walkRecords(
  bytes: Uint8Array,
  take: (payload: Uint8Array) => boolean,
): { skipped: number; skippedBytes: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = { skipped: 0, skippedBytes: 0 };
  let at = 0;
  let badFrom = -1;
  const endBad = (to: number) => {
    if (badFrom < 0) return;
    out.skipped++;
    out.skippedBytes += to - badFrom;
    badFrom = -1;
  };
  while (at + RECORD_HEADER_BYTES <= bytes.length) {
    let good = false;
    let length = 0;
    if (view.getUint32(at, true) === RECORD_MAGIC) {
      length = view.getUint32(at + 4, true);
      const end = at + RECORD_HEADER_BYTES + length;
      if (length > 0 && length <= MAX_PAYLOAD && end <= bytes.length) {
        const payload = bytes.subarray(at + RECORD_HEADER_BYTES, end);
        if (crc32(payload) === view.getUint32(at + 8, true)) {
          try {
            good = take(payload);
          } catch {
            good = false;
          }
        }
      }
    }
    if (!good) {
      if (badFrom < 0) badFrom = at;
      at++;
      continue;
    }
    endBad(at);
    at += RECORD_HEADER_BYTES + length;
  }
  if (at < bytes.length && badFrom < 0) badFrom = at;
  endBad(bytes.length);
  return out;
}

/**
 * Reads every good record of a chunk. A record whose checksum fails, that ends past the end of
 * the file (a crash mid-write) or whose body does not parse is skipped: the reader looks for the
 * next magic after it, so one bad record never hides the rest.
 */
export function decodeChunk(bytes: Uint8Array): DecodedChunk {
  const out: DecodedChunk = { header: undefined, frames: [], skipped: 0, skippedBytes: 0 };
  const skipped = walkRecords(bytes, function takeRecord(payload) {
    const record = decodePayload(payload);
    if (record === undefined) return false;
    if ("values" in record) out.frames.push(record);
    else out.header ??= record;
    return true;
  });
  out.skipped = skipped.skipped;
  out.skippedBytes = skipped.skippedBytes;
  return out;
}

/** A chunk's header and the time and stream of each of its good frames, in file order. */
export interface ChunkTimes {
  header: ChunkHeader | undefined;
  timestamps: number[];
  /** The stream of frame `i` (decoded when asked: most are never needed). */
  streamId(i: number): string;
}

/**
 * What {@link decodeChunk} would give of a chunk, less the readings and incidents: the same
 * records are taken as good, but no frame's readings are copied. For choosing which chunks to
 * read by their frames' times (a chunk's number says when it was written, not how old its
 * frames are: a backfill writes old frames into new chunks).
 */
export function chunkTimes(bytes: Uint8Array): ChunkTimes {
  let header: ChunkHeader | undefined;
  const timestamps: number[] = [];
  /** Per frame, where its stream id starts and ends in `bytes`. */
  const streams: number[] = [];
  walkRecords(bytes, function takeTime(payload) {
    const body = payload.subarray(1);
    if (payload[0] === TYPE_HEADER) {
      header ??= JSON.parse(fromUtf8.decode(body)) as ChunkHeader;
      return true;
    }
    const frame = payload[0] === TYPE_FRAME ? frameLayout(body) : undefined;
    if (!frame) return false;
    const from = body.byteOffset - bytes.byteOffset + 26;
    streams.push(from, from + frame.streamLen);
    timestamps.push(frame.view.getFloat64(14, true));
    return true;
  });
  return {
    header,
    timestamps,
    streamId: (i) => fromUtf8.decode(bytes.subarray(streams[2 * i], streams[2 * i + 1])),
  };
}
