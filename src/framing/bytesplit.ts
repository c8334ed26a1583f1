/**
 * Splitting a child's byte output into messages where text splitting (split.ts) does not apply: `--binary`, and
 * `--delimiters`/`--null`. Every splitter has the same two calls, so the reader loop does not care which it has.
 */
export interface ByteSplitter {
  /** Feeds one chunk as read; calls back for every message it completes, in order. */
  push(chunk: Uint8Array): void;
  /** The stream ended: delivers what is still held, if anything counts as a message. */
  end(): void;
}

/**
 * The delimiter bytes for `--delimiters=<CHARS>`: each character is one delimiter. Only ASCII is accepted: a
 * character of several UTF-8 bytes would otherwise split on each of its bytes, inside other characters too.
 * Throws a RangeError naming the offending character, or for an empty list.
 */
export function delimiterBytes(chars: string): Uint8Array {
  if (chars === "") throw new RangeError("expected at least one delimiter character");
  const bytes = new Uint8Array(chars.length);
  for (let i = 0; i < chars.length; i++) {
    const code = chars.charCodeAt(i);
    if (code > 0x7f) {
      throw new RangeError(`delimiter '${String.fromCodePoint(chars.codePointAt(i) ?? code)}' is not ASCII`);
    }
    bytes[i] = code;
  }
  return bytes;
}

/**
 * Splits on any one of the given delimiter bytes, like upstream's `AnyDelimiterCodec`: the delimiter is not part
 * of the message, two adjacent delimiters deliver an empty message between them (as the codec does), and at the
 * end of the stream an unterminated, non-empty rest is the last message.
 *
 * A message may span many chunks; its parts are held (copied out of the chunk) and joined once, when its
 * delimiter arrives. At most `maxMessage` bytes are held: a longer message is dropped whole, reported once
 * through `onOversize` with the bytes seen when it crossed the limit, and splitting resumes after its end.
 * Each delivered message is its own copy, so keeping it (the room's cache) never pins a whole chunk.
 */
export class DelimiterSplitter implements ByteSplitter {
  /** 1 at the byte values that delimit. */
  private readonly table = new Uint8Array(256);
  /** The delimiter when there is just one: `indexOf` then does the scanning natively. */
  private readonly single: number;
  private parts: Uint8Array[] = [];
  private held = 0;
  private discarding = false;

  constructor(
    delimiters: Uint8Array,
    private readonly maxMessage: number,
    private readonly onMessage: (message: Uint8Array) => void,
    private readonly onOversize: (bytes: number) => void,
  ) {
    if (delimiters.length === 0) throw new RangeError("DelimiterSplitter needs at least one delimiter");
    for (const byte of delimiters) this.table[byte] = 1;
    const first = delimiters[0] ?? 0;
    this.single = delimiters.every((byte) => byte === first) ? first : -1;
  }

  push(chunk: Uint8Array): void {
    let start = 0;
    for (let at = this.find(chunk, 0); at !== -1; at = this.find(chunk, start)) {
      if (this.held > 0 || this.discarding) this.complete(chunk.subarray(start, at));
      else this.emit(chunk, start, at);
      start = at + 1;
    }
    if (start < chunk.length) this.hold(chunk.subarray(start));
  }

  end(): void {
    if (this.held > 0 && !this.discarding) this.onMessage(this.join(new Uint8Array(0)));
    this.parts = [];
    this.held = 0;
    this.discarding = false;
  }

  private find(chunk: Uint8Array, from: number): number {
    if (this.single !== -1) return chunk.indexOf(this.single, from);
    const table = this.table;
    for (let i = from; i < chunk.length; i++) if (table[chunk[i] as number] === 1) return i;
    return -1;
  }

  /** A message entirely inside one chunk. */
  private emit(chunk: Uint8Array, start: number, end: number): void {
    if (end - start > this.maxMessage) this.onOversize(end - start);
    else this.onMessage(chunk.slice(start, end));
  }

  /** The delimiter of a message begun in an earlier chunk arrived; `last` is its final piece. */
  private complete(last: Uint8Array): void {
    if (this.discarding) {
      this.discarding = false;
      return;
    }
    const size = this.held + last.length;
    if (size > this.maxMessage) this.onOversize(size);
    else this.onMessage(this.join(last));
    this.parts = [];
    this.held = 0;
  }

  private hold(piece: Uint8Array): void {
    if (this.discarding) return;
    if (this.held + piece.length > this.maxMessage) {
      this.onOversize(this.held + piece.length);
      this.parts = [];
      this.held = 0;
      this.discarding = true;
      return;
    }
    this.parts.push(piece.slice());
    this.held += piece.length;
  }

  /** The held parts and `last` as one message: one allocation, each byte copied once. */
  private join(last: Uint8Array): Uint8Array {
    if (this.parts.length === 1 && last.length === 0) return this.parts[0] as Uint8Array;
    const message = new Uint8Array(this.held + last.length);
    let offset = 0;
    for (const part of this.parts) {
      message.set(part, offset);
      offset += part.length;
    }
    message.set(last, offset);
    return message;
  }
}

/**
 * `--binary` without delimiters: each chunk read is one message, as upstream's `BytesCodec` delivers it. A chunk
 * longer than `maxMessage` goes out in pieces of at most that size rather than being dropped: chunk boundaries
 * carry no meaning here, so cutting one loses nothing. Chunks are handed on without copying (Bun never reuses a
 * pipe or socket read buffer); the caller must not modify a chunk after pushing it.
 */
export class ChunkPassthrough implements ByteSplitter {
  constructor(
    private readonly maxMessage: number,
    private readonly onMessage: (message: Uint8Array) => void,
  ) {}

  push(chunk: Uint8Array): void {
    for (let start = 0; start < chunk.length; start += this.maxMessage) {
      this.onMessage(
        start === 0 && chunk.length <= this.maxMessage
          ? chunk
          : chunk.subarray(start, start + this.maxMessage),
      );
    }
  }

  end(): void {}
}

/**
 * The splitter for binary output: on `delimiters` when given (`--delimiters`, `--null`), else one message per
 * chunk. `onOversize` is only ever called by the delimiter splitter.
 */
export function byteSplitter(
  delimiters: Uint8Array | null,
  maxMessage: number,
  onMessage: (message: Uint8Array) => void,
  onOversize: (bytes: number) => void,
): ByteSplitter {
  return delimiters === null || delimiters.length === 0
    ? new ChunkPassthrough(maxMessage, onMessage)
    : new DelimiterSplitter(delimiters, maxMessage, onMessage, onOversize);
}
