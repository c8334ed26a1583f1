import type { FileSink } from "bun";

/**
 * Where a {@link BoundedWriter} writes: a child's stdin pipe, a TCP socket to it, Bun's FileSink (stderr, or a
 * child's stdin where OS pipes cannot be had), later a pseudo-terminal.
 */
export interface ByteSink {
  /**
   * Takes a prefix of `chunk` (whose UTF-8 size is `size` bytes) and returns its length in bytes: all of it, a
   * part (the caller keeps the rest and tries again once `ondrain` is called), 0 while the sink is full, or -1
   * once the sink is closed (the child is gone).
   */
  write(chunk: string | Uint8Array, size: number): number;
  /** Bytes the sink took but has not written out yet (a remainder it had to keep); they count against the cap. */
  readonly pending: number;
  /** Set by the writer: called once a sink that took less than it was given (or holds `pending`) can take more. */
  ondrain: (() => void) | null;
  /** No more writes: what the sink holds goes out, then its end is closed (EOF for the reader). */
  end(): void;
}

/**
 * Writers whose queue got something this event-loop turn. One `setImmediate` flushes them all at the end of the
 * turn: a burst of client messages costs one write per child, and a hundred busy rooms one timer, not a hundred.
 */
const dirty = new Set<BoundedWriter>();
let flushQueued = false;

function flushDirty(): void {
  flushQueued = false;
  for (const writer of dirty) {
    dirty.delete(writer);
    writer.flush();
  }
}

const utf8 = new TextEncoder();

/** The UTF-8 size of a string or the length of bytes. */
export function byteSize(data: string | Uint8Array): number {
  return typeof data === "string" ? Buffer.byteLength(data, "utf8") : data.byteLength;
}

/**
 * An ordered, bounded queue of bytes in front of one {@link ByteSink}: what a child's input (whatever its
 * transport) and the log are written through. It counts **bytes** (UTF-8 for text), so a cap means the same
 * on every path. Writes are joined and handed to the sink once per event-loop turn; a write that would take the
 * queue (plus what the sink still holds) past `maxBytes` is refused whole, so a reader that stalls never grows
 * the server's memory. Until a sink is attached (a child still starting, or in its `--delay`), writes are held,
 * counted against the same cap.
 */
export class BoundedWriter {
  private sink: ByteSink | null = null;
  /** Queued writes, oldest first, joined into one chunk at flush. */
  private parts: (string | Uint8Array)[] = [];
  private hasBytes = false;
  /** Bytes in `parts`. */
  private queued = 0;
  /** The sink took less than it was given: nothing more is handed to it until it drains. */
  private waiting = false;
  private ending = false;
  private closed = false;
  /** The flush a writer with `flushAfterMs` has queued, if any. */
  private timer: Timer | null = null;

  /**
   * `onWritten` hears how many bytes the sink took (for the metrics); `onIdle`, when a sink that had to be waited
   * for drained and nothing is left to write. `flushAfterMs` above 0 hands what was queued to the sink that many
   * milliseconds after the first write rather than at the end of the turn (the log: one write per burst of lines,
   * not per turn); its owner flushes it before the process exits.
   */
  constructor(
    readonly maxBytes: number,
    private readonly onWritten: (bytes: number) => void = () => {},
    private readonly onIdle: () => void = () => {},
    private readonly flushAfterMs = 0,
  ) {}

  /** Bytes accepted and not yet written out (held here or in the sink). */
  get pending(): number {
    return this.queued + (this.sink?.pending ?? 0);
  }

  /** Whether writes are still taken: not ended, not closed. */
  get open(): boolean {
    return !this.ending && !this.closed;
  }

  /**
   * Queues `data`. Returns false, queueing nothing, when the writer was ended or closed, or when the bytes would
   * pass `maxBytes`. The data is not copied: the caller must not change bytes after handing them over.
   */
  write(data: string | Uint8Array): boolean {
    if (this.ending || this.closed) return false;
    const size = byteSize(data);
    if (this.pending + size > this.maxBytes) return false;
    this.parts.push(data);
    if (typeof data !== "string") this.hasBytes = true;
    this.queued += size;
    if (this.parts.length === 1 && this.sink !== null && !this.waiting) this.queueFlush();
    return true;
  }

  private queueFlush(): void {
    if (this.flushAfterMs > 0) {
      if (this.timer !== null) return;
      this.timer = setTimeout(() => {
        this.timer = null;
        this.flush();
      }, this.flushAfterMs);
      // Never what keeps the process alive: its owner flushes on the way out.
      this.timer.unref();
      return;
    }
    dirty.add(this);
    if (!flushQueued) {
      flushQueued = true;
      setImmediate(flushDirty);
    }
  }

  /** Starts writing into `sink`: what was held goes first, in order. */
  attach(sink: ByteSink): void {
    if (this.closed || this.sink !== null) {
      sink.end();
      return;
    }
    this.sink = sink;
    sink.ondrain = this.drained;
    this.flush();
  }

  /** No more writes: what is queued still goes out, then the sink ends (once attached). */
  end(): void {
    if (this.ending || this.closed) return;
    this.ending = true;
    if (!this.waiting) this.flush();
  }

  /** Drops what is queued and stops writing; the sink is not ended (its owner closes it). */
  close(): void {
    this.closed = true;
    this.parts = [];
    this.queued = 0;
    dirty.delete(this);
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  /**
   * Hands everything queued to the sink as one chunk; called once per turn (or `flushAfterMs` after a write), on
   * drain, and at the end.
   */
  flush(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const sink = this.sink;
    if (sink === null || this.waiting || this.closed) return;
    if (this.parts.length > 0) {
      const chunk = this.join();
      const size = this.queued;
      const taken = sink.write(chunk, size);
      if (taken < 0) {
        this.close();
        return;
      }
      this.queued -= taken;
      if (taken > 0) this.onWritten(taken);
      if (taken < size) {
        // The sink is full: the reader is slower than the writers. The rest waits for its drain.
        const bytes = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
        this.parts = [bytes.subarray(taken)];
        this.hasBytes = true;
        this.waiting = true;
        return;
      }
    }
    if (this.ending) {
      this.closed = true;
      sink.end();
    }
  }

  private readonly drained = (): void => {
    this.waiting = false;
    this.flush();
    if (this.pending === 0 && !this.waiting) this.onIdle();
  };

  /** The queued writes as one chunk: one string when all are text, else one byte array. */
  private join(): string | Uint8Array {
    const parts = this.parts;
    this.parts = [];
    if (!this.hasBytes) return parts.length === 1 ? (parts[0] as string) : parts.join("");
    this.hasBytes = false;
    if (parts.length === 1) return parts[0] as Uint8Array;
    return Buffer.concat(parts.map((part) => (typeof part === "string" ? utf8.encode(part) : part)));
  }
}

/**
 * A Bun FileSink as a {@link ByteSink}: it takes each chunk whole and reports it pending while its flush waits for
 * the reader, so the writer holds further chunks (bounded) rather than Bun's buffer growing.
 */
export function fileSink(sink: Pick<FileSink, "write" | "flush" | "end">): ByteSink {
  let pending = 0;
  let ended = false;
  const out: ByteSink = {
    get pending() {
      return pending;
    },
    ondrain: null,
    write(chunk, size) {
      if (ended) return -1;
      if (pending > 0) return 0;
      try {
        settle(sink.write(chunk));
        const flushed = sink.flush();
        if (flushed instanceof Promise) {
          pending = size;
          flushed.then(
            () => {
              pending = 0;
              out.ondrain?.();
            },
            () => {
              ended = true;
              pending = 0;
            },
          );
        }
      } catch {
        ended = true; // the reader is gone (EPIPE)
        return -1;
      }
      return size;
    },
    end() {
      if (ended) return;
      ended = true;
      try {
        settle(sink.end());
      } catch {
        // already closed: the reader is gone
      }
    },
  };
  return out;
}

/** A write the sink could not finish at once returns a promise; its rejection (EPIPE) must not go unhandled. */
export function settle(result: unknown): void {
  if (result instanceof Promise) result.catch(() => {});
}
