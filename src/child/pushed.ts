import type { Source } from "./link.ts";

/** Most bytes kept for a reader that has not started yet (a child that speaks during `--delay`). */
const MAX_EARLY_BYTES = 1024 * 1024;

/**
 * A Source fed by a callback (a socket's or a terminal's data event) rather than pulled. What arrives before
 * `read` is called is kept, copied and bounded, and delivered first; past the bound it is dropped, so a child
 * that prints before anyone reads cannot grow the server's memory. `read` resolves when `ended` does.
 */
export class PushedSource implements Source {
  private onChunk: ((chunk: Uint8Array) => void) | null = null;
  private early: Uint8Array[] = [];
  private earlyBytes = 0;

  constructor(private readonly ended: Promise<void>) {}

  /** One chunk from the child; the caller may reuse its buffer afterwards. */
  push(chunk: Uint8Array): void {
    if (this.onChunk !== null) {
      this.onChunk(chunk);
      return;
    }
    if (this.earlyBytes + chunk.byteLength > MAX_EARLY_BYTES) return;
    this.earlyBytes += chunk.byteLength;
    this.early.push(chunk.slice());
  }

  read(onChunk: (chunk: Uint8Array) => void): Promise<void> {
    this.onChunk = onChunk;
    const early = this.early;
    this.early = [];
    this.earlyBytes = 0;
    for (const chunk of early) onChunk(chunk);
    return this.ended;
  }
}
