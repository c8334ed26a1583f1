import { writeSync } from "node:fs";
import type { FileSink } from "bun";
import type { OwnedFd } from "./pipes.ts";

/** What the child's stdin is written through: Bun's FileSink, or a {@link PipeWriter} on our own pipe. */
export interface StdinSink {
  write(chunk: string | Uint8Array): number | Promise<number>;
  flush(): number | Promise<number>;
  end(): number | Promise<number>;
}

/**
 * Our end of the child's stdin pipe (non-blocking, see pipes.ts), written with plain write(2) calls; the child
 * batches messages per event-loop turn, so that is one call per turn. Only when the pipe is full does a FileSink
 * take the rest and wait for the pipe to drain; what comes meanwhile queues behind it in the sink, in order.
 *
 * Bun's FileSink is not used for every write: it re-arms an epoll registration before each one, and making and
 * ending one costs 26–46 µs per child (measured here). The descriptor stays ours: the caller closes it after {@link end}.
 */
export class PipeWriter implements StdinSink {
  /** Holds what the pipe could not take, until it drained; then it is done with. */
  private waiting: FileSink | null = null;

  constructor(private readonly fd: OwnedFd) {}

  /** Writes `chunk`, or queues it behind a full pipe; returns its size in bytes. Throws EPIPE once the child closed its stdin. */
  write(bytes: string | Uint8Array): number {
    const size = typeof bytes === "string" ? Buffer.byteLength(bytes) : bytes.byteLength;
    if (this.waiting !== null) {
      this.waiting.write(bytes);
      return size;
    }
    let written = 0;
    try {
      // The same call twice: writeSync's two overloads take a string or bytes, not the union.
      written = typeof bytes === "string" ? writeSync(this.fd.fd, bytes) : writeSync(this.fd.fd, bytes);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EAGAIN") throw err;
    }
    if (written < size) {
      const rest = (typeof bytes === "string" ? Buffer.from(bytes) : bytes).subarray(written);
      this.waiting = Bun.file(this.fd.fd).writer();
      this.waiting.write(rest);
    }
    return size;
  }

  /** A number when everything is written; while the pipe is full, a promise that settles once it drained. */
  flush(): number | Promise<number> {
    const waiting = this.waiting;
    if (waiting === null) return 0;
    const flushed = waiting.flush();
    if (!(flushed instanceof Promise)) {
      this.drained(waiting);
      return flushed;
    }
    return flushed.then((n) => {
      this.drained(waiting);
      return n;
    });
  }

  /** Hands back to direct writes once the sink wrote everything (it closes its own copy of the descriptor). */
  private drained(waiting: FileSink): void {
    if (this.waiting !== waiting) return;
    this.waiting = null;
    waiting.end();
  }

  /** Ends writing: what a full pipe still holds goes out first (the caller closes our descriptor after this). */
  end(): number | Promise<number> {
    const waiting = this.waiting;
    this.waiting = null;
    return waiting === null ? 0 : waiting.end();
  }
}
