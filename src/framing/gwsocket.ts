import type { Config } from "../config.ts";
import { remoteAddr } from "../env.ts";
import type { Framing } from "./framing.ts";

/*
 * gwsocket strict-mode framing (`--frame=gwsocket`). Every message is a 12-byte header of three big-endian u32
 * (client ID, type, payload length) followed by exactly `length` payload bytes. gwsocket packs each field with
 * `htonl`, so the header is big-endian; upstream ScaleSocket reads it little-endian, which no gwsocket app speaks.
 */

/** Bytes in a frame header. */
export const HEADER_SIZE = 12;

/** Frame types: gwsocket's websocket opcodes, plus its notices about clients arriving and leaving. */
export const FrameType = {
  text: 0x01,
  binary: 0x02,
  /** Client → child only: a connection closed; empty payload. */
  close: 0x08,
  /** Client → child only: a connection opened; the payload is the client's address. */
  open: 0x10,
} as const;

const MAX_U32 = 0xffff_ffff;
const utf8 = new TextEncoder();

/**
 * One frame: header then payload, in a single allocation so the caller can hand it to the child in one write.
 * A string payload is encoded as UTF-8 straight into the frame (its length counted first, so nothing is copied
 * twice). Throws a RangeError for an `id` or `type` that is not a u32.
 */
export function encodeFrame(id: number, type: number, payload: Uint8Array | string): Uint8Array {
  if (!isU32(id)) throw new RangeError(`gwsocket client id out of range: ${id}`);
  if (!isU32(type)) throw new RangeError(`gwsocket frame type out of range: ${type}`);
  const length = typeof payload === "string" ? Buffer.byteLength(payload, "utf8") : payload.byteLength;
  const frame = new Uint8Array(HEADER_SIZE + length);
  const view = new DataView(frame.buffer);
  view.setUint32(0, id);
  view.setUint32(4, type);
  view.setUint32(8, length);
  if (typeof payload === "string") utf8.encodeInto(payload, frame.subarray(HEADER_SIZE));
  else frame.set(payload, HEADER_SIZE);
  return frame;
}

/** The notice gwsocket gives its app when a client connects: type 0x10 with the client's address. */
export function encodeOpen(id: number, address: string): Uint8Array {
  return encodeFrame(id, FrameType.open, address);
}

/** The notice gwsocket gives its app when a client leaves: type 0x08, no payload. */
export function encodeClose(id: number): Uint8Array {
  return encodeFrame(id, FrameType.close, EMPTY);
}

const EMPTY = new Uint8Array(0);

function isU32(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= MAX_U32;
}

/**
 * Parses a child's gwsocket output (child → clients), a byte stream cut into chunks wherever the pipe or socket
 * happened to cut it. Only text (1) and binary (2) frames are valid in this direction.
 *
 * Each byte is copied at most once: a header is gathered in a fixed 12-byte buffer, a payload that spans chunks
 * goes into one buffer of exactly its length, and a payload inside one chunk is sliced out of it. At most
 * `maxPayload + 12` bytes are ever held.
 *
 * Resynchronisation: a header whose type is not 1 or 2, or whose length exceeds `maxPayload`, cannot be trusted
 * (its length may be garbage, so skipping `length` bytes could swallow good frames or the rest of the stream).
 * The parser reports it once through `onError`, drops its first byte and slides forward one byte at a time until
 * the 12 bytes in view form a plausible header: type 1 or 2, length ≤ `maxPayload`, and an ID that
 * `isPlausibleId` accepts. Then it parses normally from there. The search is linear and holds at most 11 bytes.
 *
 * The ID test matters for the commonest fault, text printed among frames: text has no NUL bytes, so the only
 * false header it can form is the one 4 bytes before a real header, whose "type" is the real client ID and whose
 * "length" the real type. That looks plausible exactly when the real frame is for client 1 or 2, and would cost
 * that frame. A room passes `id => id === 0 || isMember(id)`: a frame for anyone else would be dropped anyway, and
 * 4 bytes of text never spell a live ID. The default accepts every ID. Binary garbage can still, by chance,
 * contain a plausible header (its type is `00 00 00 01` or `00 00 00 02`), and an oversized frame's payload is
 * searched like garbage rather than skipped.
 */
export class GwsocketParser {
  private readonly header = new Uint8Array(HEADER_SIZE);
  private readonly view = new DataView(this.header.buffer);
  /** Header bytes gathered so far. */
  private headerFill = 0;
  /** The payload being gathered across chunks, or null while reading a header. */
  private payload: Uint8Array | null = null;
  private payloadFill = 0;
  private payloadId = 0;
  private payloadType = 0;
  /** True from a bad header until the next plausible one: reports one error per run of garbage. */
  private resyncing = false;
  private skippedBytes = 0;

  constructor(
    private readonly maxPayload: number,
    private readonly onFrame: (id: number, type: number, payload: Uint8Array) => void,
    private readonly onError: (message: string) => void,
    /** Consulted only while resynchronising; see the class comment. */
    private readonly isPlausibleId: (id: number) => boolean = () => true,
  ) {}

  /** Bytes dropped while resynchronising, over the parser's life (for metrics). */
  get skipped(): number {
    return this.skippedBytes;
  }

  /** Feeds one chunk; calls `onFrame` for every frame it completes, in order. */
  push(chunk: Uint8Array): void {
    let pos = 0;
    while (pos < chunk.length) {
      if (this.payload !== null) {
        pos = this.fillPayload(chunk, pos);
        continue;
      }
      const take = Math.min(HEADER_SIZE - this.headerFill, chunk.length - pos);
      this.header.set(chunk.subarray(pos, pos + take), this.headerFill);
      this.headerFill += take;
      pos += take;
      if (this.headerFill < HEADER_SIZE) return;

      const id = this.view.getUint32(0);
      const type = this.view.getUint32(4);
      const length = this.view.getUint32(8);
      const valid = (type === FrameType.text || type === FrameType.binary) && length <= this.maxPayload;
      if (!valid || (this.resyncing && !this.isPlausibleId(id))) {
        if (!this.resyncing) {
          this.resyncing = true;
          this.onError(
            length <= this.maxPayload
              ? `gwsocket: dropped a frame header with unknown type 0x${type.toString(16)}; resynchronising`
              : `gwsocket: dropped a frame header with length ${length} (limit ${this.maxPayload}); resynchronising`,
          );
        }
        // Slide the window by one byte: the next candidate header starts at the second byte of this one.
        this.header.copyWithin(0, 1);
        this.headerFill = HEADER_SIZE - 1;
        this.skippedBytes++;
        continue;
      }
      this.resyncing = false;
      this.headerFill = 0;
      const available = chunk.length - pos;
      if (available >= length) {
        // The whole payload is in this chunk: one copy, so the frame does not pin the chunk in memory.
        this.onFrame(id, type, chunk.slice(pos, pos + length));
        pos += length;
      } else {
        this.payload = new Uint8Array(length);
        this.payloadFill = 0;
        this.payloadId = id;
        this.payloadType = type;
      }
    }
  }

  /** Reports a frame cut short by the end of the stream (a child that exited mid-write), then resets. */
  end(): void {
    if (this.payload !== null) {
      this.onError(
        `gwsocket: stream ended inside a frame (${this.payloadFill} of ${this.payload.length} payload bytes)`,
      );
    } else if (this.headerFill > 0) {
      if (this.resyncing) this.skippedBytes += this.headerFill;
      this.onError(
        this.resyncing
          ? `gwsocket: stream ended while resynchronising (${this.headerFill} bytes dropped)`
          : `gwsocket: stream ended inside a frame header (${this.headerFill} of ${HEADER_SIZE} bytes)`,
      );
    }
    this.payload = null;
    this.headerFill = 0;
    this.resyncing = false;
  }

  private fillPayload(chunk: Uint8Array, pos: number): number {
    const payload = this.payload as Uint8Array;
    const take = Math.min(payload.length - this.payloadFill, chunk.length - pos);
    payload.set(chunk.subarray(pos, pos + take), this.payloadFill);
    this.payloadFill += take;
    if (this.payloadFill === payload.length) {
      // Reset before the callback, so a callback that throws leaves the parser ready for the next frame.
      this.payload = null;
      this.onFrame(this.payloadId, this.payloadType, payload);
    }
    return pos + take;
  }
}

const utf8Decoder = new TextDecoder();

/**
 * gwsocket strict mode (`--frame=gwsocket`): every client message reaches the child as a frame carrying its
 * sender, clients' arrivals and departures as open and close frames; the child's frames are parsed as a
 * length-prefixed stream (never split on delimiters), ID 0 broadcast, any other sent to that client.
 */
export function gwsocketFraming(config: Config): Framing {
  return {
    refusal: "a message",
    overhead: HEADER_SIZE,
    toChild: (message, from) =>
      encodeFrame(from, typeof message === "string" ? FrameType.text : FrameType.binary, message),
    joined: (conn) => encodeOpen(conn.id, remoteAddr(conn)),
    left: (conn) => encodeClose(conn.id),
    stderr: (line) => line,
    addressed: true,
    reader: (room) =>
      new GwsocketParser(
        config.maxBuffer,
        (id, type, payload) => {
          const message = type === FrameType.text ? utf8Decoder.decode(payload) : payload;
          if (id === 0) room.broadcast(message, false);
          else room.sendTo(id, message);
        },
        (warning) => room.dropped(warning),
        // While resynchronising, only a header for a member (or a broadcast) is believed: see GwsocketParser.
        (id) => id === 0 || room.has(id),
      ),
  };
}
