/**
 * The last messages a room broadcast (`--cache`), replayed oldest first to each new client. Bounded twice: at
 * most `size` messages (1, 8 or 64) and at most `maxBytes` in all (`--maxbuffer`), since a replay larger than a
 * client's send cap would only get that client closed as too slow. The oldest messages go first.
 */
export class MessageCache {
  private readonly messages: (string | Uint8Array)[] = [];
  private total = 0;

  constructor(
    readonly size: number,
    readonly maxBytes: number,
  ) {}

  push(message: string | Uint8Array): void {
    this.messages.push(message);
    this.total += sizeOf(message);
    // At most 64 entries: shifting the oldest off is cheaper than keeping ring indices.
    while (this.messages.length > this.size || this.total > this.maxBytes) {
      this.total -= sizeOf(this.messages.shift() as string | Uint8Array);
    }
  }

  /** The cached messages, oldest first. */
  entries(): readonly (string | Uint8Array)[] {
    return this.messages;
  }

  get length(): number {
    return this.messages.length;
  }

  /** What the cache holds, in bytes (UTF-16 units for text, close enough for a bound). */
  get bytes(): number {
    return this.total;
  }
}

function sizeOf(message: string | Uint8Array): number {
  return typeof message === "string" ? message.length : message.byteLength;
}
