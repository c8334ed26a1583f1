import type { Socket } from "bun";
import { CHILD_HOST } from "./ports.ts";

/** First pause after a refused connect; it doubles up to {@link MAX_BACKOFF_MS}. */
const FIRST_BACKOFF_MS = 10;
/** Low enough that a child listening late is reached within a quarter second of it. */
const MAX_BACKOFF_MS = 250;
/**
 * The least time one attempt gets, even at the deadline: a connect to a listening local port completes within
 * microseconds, but its completion must not lose a race against a zero-length timer.
 */
const MIN_ATTEMPT_MS = 50;
/** Small queued writes are joined into one socket write of up to this many bytes: fewer syscalls. */
const BATCH_BYTES = 64 * 1024;
/** The default cap on bytes queued for the child, as `--maxbuffer`'s default. */
const DEFAULT_MAX_BUFFER = 4 * 1024 * 1024;

const utf8 = new TextEncoder();

export interface ConnectOptions {
  /** Wait this long before the first attempt (`--delay`; upstream attaches after one second). */
  delayMs: number;
  /** Give up this long after the call, counting the delay. At least one attempt is made after the delay. */
  deadlineMs: number;
  /** Stops the attempts, as when the child exits or the room closes before the child listens. */
  signal?: AbortSignal;
  /** Most bytes queued for the child; see {@link TcpLink.write}. */
  maxBuffer?: number;
}

/** The child could not be reached; `message` is fit for the log and a close reason. */
export class TcpConnectError extends Error {
  override name = "TcpConnectError";
}

/**
 * Connects to a `--tcp` child on 127.0.0.1:`port`. The child binds only after it starts, so a refused connect is
 * retried, with a pause doubling from 10 ms to 250 ms, until `deadlineMs` after the call. Rejects with a
 * TcpConnectError naming the port at the deadline, or when `signal` aborts.
 */
export async function connectWithRetry(port: number, opts: ConnectOptions): Promise<TcpLink> {
  const started = performance.now();
  const deadline = started + opts.deadlineMs;
  const address = `${CHILD_HOST}:${port}`;
  const aborted = (): TcpConnectError => {
    const reason = opts.signal?.reason;
    return new TcpConnectError(
      `stopped connecting to the child on ${address}: ${reason instanceof Error ? reason.message : "aborted"}`,
    );
  };
  const late = (): TcpConnectError =>
    new TcpConnectError(`child did not listen on ${address} within ${formatSeconds(opts.deadlineMs)} s`);

  if (!(await pause(opts.delayMs, opts.signal))) throw aborted();
  let backoff = FIRST_BACKOFF_MS;
  for (;;) {
    // A connect to a local port is refused at once; the bound only guards against one that hangs (a child
    // whose listen backlog is full drops the SYN, and the kernel retries it only after a second).
    const outcome = await attempt(port, opts.maxBuffer ?? DEFAULT_MAX_BUFFER, deadline, opts.signal);
    if (outcome instanceof TcpLink) return outcome;
    if (outcome === "aborted") throw aborted();
    const remaining = deadline - performance.now();
    if (remaining <= 0) throw late();
    if (!(await pause(Math.min(backoff, remaining), opts.signal))) throw aborted();
    backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
  }
}

/** One connect, bounded by the deadline and the signal; a socket that connects too late is closed. */
async function attempt(
  port: number,
  maxBuffer: number,
  deadline: number,
  signal: AbortSignal | undefined,
): Promise<TcpLink | "failed" | "aborted"> {
  if (signal?.aborted) return "aborted";
  const connecting = TcpLink.open(port, maxBuffer);
  let timer: Timer | undefined;
  let onAbort: (() => void) | undefined;
  const cutoff = new Promise<"failed" | "aborted">((resolve) => {
    timer = setTimeout(() => resolve("failed"), Math.max(MIN_ATTEMPT_MS, deadline - performance.now()));
    onAbort = () => resolve("aborted");
    signal?.addEventListener("abort", onAbort, { once: true });
  });
  const outcome = await Promise.race([connecting.catch(() => "failed" as const), cutoff]);
  clearTimeout(timer);
  if (onAbort) signal?.removeEventListener("abort", onAbort);
  // A connect that completes after the cutoff is not wanted any more.
  if (!(outcome instanceof TcpLink)) connecting.then((link) => link.destroy()).catch(() => {});
  return outcome;
}

/** Resolves true after `ms`, or false as soon as `signal` aborts. */
function pause(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      resolve(ok);
    };
    const onAbort = () => done(false);
    const timer = setTimeout(() => done(true), ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function formatSeconds(ms: number): string {
  return String(Math.round(ms) / 1000);
}

/**
 * A connected TCP link to a child. Output arrives through {@link onData} as the socket reads it; input goes
 * through a bounded queue that the socket drains at the pace the child reads. `closed` settles when the
 * connection ends from either side, or fails (`error` then says why).
 */
export class TcpLink {
  readonly closed: Promise<void>;
  /** Why the connection ended, when it failed rather than closed. */
  error: Error | null = null;
  private socket: Socket<undefined> | null = null;
  private settle: () => void = () => {};
  private isClosed = false;
  private ending = false;
  /** Our side was shut down: once, after the last queued byte went out. */
  private shutDown = false;
  private onChunk: ((chunk: Uint8Array) => void) | null = null;
  /** What arrived before {@link onData} was called: nothing is lost to a child that speaks first. */
  private early: Uint8Array[] = [];
  /** Writes not yet accepted by the socket, oldest first from `head`. */
  private queue: Uint8Array[] = [];
  private head = 0;
  /** Bytes in `queue` from `head` on. */
  private queued = 0;
  private flushScheduled = false;
  private waitingDrain = false;

  private constructor(
    readonly port: number,
    private readonly maxBuffer: number,
  ) {
    this.closed = new Promise((resolve) => {
      this.settle = resolve;
    });
  }

  /** One connect attempt; rejects as `Bun.connect` does (ECONNREFUSED while nothing listens). */
  static async open(port: number, maxBuffer: number): Promise<TcpLink> {
    const link = new TcpLink(port, maxBuffer);
    link.socket = await Bun.connect({
      hostname: CHILD_HOST,
      port,
      socket: {
        binaryType: "uint8array",
        data: (_socket, chunk) => link.receive(chunk),
        drain: () => link.drained(),
        close: (_socket, error) => link.ended(error ?? null),
        // A throwing data callback lands here; the link's state is then unknown, so it ends.
        error: (socket, error) => {
          link.error ??= error;
          socket.terminate();
          link.ended(error);
        },
        // Handled by the rejected promise; declaring it keeps that rejection from counting as unhandled.
        connectError: () => {},
      },
    });
    return link;
  }

  /** Bytes queued for the child and not yet taken by the socket. */
  get pending(): number {
    return this.queued;
  }

  /** Sets the one receiver of the child's output; anything that arrived before is delivered first. */
  onData(cb: (chunk: Uint8Array) => void): void {
    this.onChunk = cb;
    const early = this.early;
    this.early = [];
    for (const chunk of early) cb(chunk);
  }

  /**
   * Queues one message for the child, with `\n` after it when `newline` (text mode). Returns false, queueing
   * nothing, when the link is closed or ending, or when the message would take the queue past `maxBuffer`
   * bytes: a child that stops reading never grows the server's memory. Messages are sent in order; the queue
   * is flushed once per event-loop turn, small messages joined into one write, and a partial write resumes on
   * the socket's drain. The bytes are copied, so the caller may reuse its buffer.
   */
  write(data: string | Uint8Array, newline: boolean): boolean {
    if (this.isClosed || this.ending) return false;
    const size =
      (typeof data === "string" ? Buffer.byteLength(data, "utf8") : data.byteLength) + (newline ? 1 : 0);
    if (this.queued + size > this.maxBuffer) return false;
    let bytes: Uint8Array;
    if (typeof data === "string") bytes = utf8.encode(newline ? `${data}\n` : data);
    else {
      bytes = new Uint8Array(size);
      bytes.set(data);
      if (newline) bytes[size - 1] = 0x0a;
    }
    this.queue.push(bytes);
    this.queued += size;
    if (!this.flushScheduled && !this.waitingDrain) {
      this.flushScheduled = true;
      setImmediate(this.flush);
    }
    return true;
  }

  /**
   * Closes the link gracefully: what is queued is still sent, then the child reads EOF. A child that never reads
   * keeps the rest queued until it exits (its socket closes with it) or {@link destroy} is called.
   */
  end(): void {
    if (this.ending || this.isClosed) return;
    this.ending = true;
    if (!this.flushScheduled && !this.waitingDrain) this.flush();
  }

  /** Closes the link at once, dropping anything queued. */
  destroy(): void {
    this.socket?.terminate();
    this.ended(null);
  }

  private receive(chunk: Uint8Array): void {
    if (this.onChunk) this.onChunk(chunk);
    else this.early.push(chunk);
  }

  private drained(): void {
    this.waitingDrain = false;
    if (!this.flushScheduled) this.flush();
  }

  private ended(error: Error | null): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.error ??= error;
    this.queue = [];
    this.head = 0;
    this.queued = 0;
    this.settle();
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    const socket = this.socket;
    if (socket === null || this.isClosed) return;
    while (this.head < this.queue.length) {
      const batch = this.nextBatch();
      const written = socket.write(batch);
      if (written < 0) {
        this.ended(null); // the socket closed under us; its close callback may still follow
        return;
      }
      this.queued -= written;
      if (written < batch.length) {
        // The socket's buffer is full: the child reads slower than clients write. Resume on drain.
        this.queue[--this.head] = batch.subarray(written);
        this.waitingDrain = true;
        this.compact();
        return;
      }
    }
    this.queue = [];
    this.head = 0;
    // shutdown(2), not end(): Bun's end() closes the socket, losing the child's answer to what was sent last
    // (and resetting the child's connection when that answer arrives).
    if (this.ending && !this.shutDown) {
      this.shutDown = true;
      socket.shutdown();
    }
  };

  /** The next write: the oldest message, joined with the ones after it while the total stays small. */
  private nextBatch(): Uint8Array {
    const first = this.queue[this.head] as Uint8Array;
    let end = this.head + 1;
    let size = first.length;
    while (end < this.queue.length && size + (this.queue[end] as Uint8Array).length <= BATCH_BYTES) {
      size += (this.queue[end] as Uint8Array).length;
      end++;
    }
    if (end === this.head + 1) {
      this.queue[this.head++] = EMPTY;
      return first;
    }
    const batch = new Uint8Array(size);
    let offset = 0;
    for (; this.head < end; this.head++) {
      batch.set(this.queue[this.head] as Uint8Array, offset);
      offset += (this.queue[this.head] as Uint8Array).length;
      this.queue[this.head] = EMPTY; // written ones must not stay reachable while the rest waits
    }
    return batch;
  }

  /** Drops the written slots once they are most of the array: amortised O(1) per message. */
  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }
}

const EMPTY = new Uint8Array(0);
