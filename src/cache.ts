/**
 * The last `size` messages a room broadcast (`--cache`), replayed oldest first to each new client. A fixed ring:
 * pushing never allocates beyond `size` slots.
 */
export class MessageCache {
  private readonly slots: (string | Uint8Array)[] = [];
  private next = 0;

  constructor(readonly size: number) {}

  push(message: string | Uint8Array): void {
    if (this.slots.length < this.size) this.slots.push(message);
    else this.slots[this.next] = message;
    this.next = (this.next + 1) % this.size;
  }

  /** The cached messages, oldest first. */
  entries(): (string | Uint8Array)[] {
    if (this.slots.length < this.size) return this.slots.slice();
    return [...this.slots.slice(this.next), ...this.slots.slice(0, this.next)];
  }

  get length(): number {
    return this.slots.length;
  }
}
