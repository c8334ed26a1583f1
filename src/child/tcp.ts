import type { Socket } from "bun";
import type { ByteSink } from "../writer.ts";
import type { Link, Transport } from "./link.ts";
import { CHILD_HOST } from "./ports.ts";
import { PushedSource } from "./pushed.ts";
import { spawnWithPipes } from "./spawn.ts";

/**
 * `--tcp`: the child gets `PORT` in its environment and listens on 127.0.0.1:$PORT; its stdout and stderr go to
 * the log, and the server connects once it runs and `--delay` passed, retrying for `connectTimeoutMs`.
 */
export function tcpTransport(port: number, connectTimeoutMs: number, osPipes: boolean): Transport {
  return {
    inputEnds: true,
    start(command) {
      const spawned = spawnWithPipes(command, false, osPipes);
      return {
        process: spawned.process,
        logs: { stderr: spawned.stderr, stdout: spawned.stdout },
        attach: (signal) => connectWithRetry(port, { delayMs: 0, deadlineMs: connectTimeoutMs, signal }),
      };
    },
  };
}

/** First pause after a refused connect; it doubles up to {@link MAX_BACKOFF_MS}. */
const FIRST_BACKOFF_MS = 10;
/** Low enough that a child listening late is reached within a quarter second of it. */
const MAX_BACKOFF_MS = 250;
/**
 * The least time one attempt gets, even at the deadline: a connect to a listening local port completes within
 * microseconds, but its completion must not lose a race against a zero-length timer.
 */
const MIN_ATTEMPT_MS = 50;

export interface ConnectOptions {
  /** Wait this long before the first attempt (`--delay`; upstream attaches after one second). */
  delayMs: number;
  /** Give up this long after the call, counting the delay. At least one attempt is made after the delay. */
  deadlineMs: number;
  /** Stops the attempts, as when the child exits or the room closes before the child listens. */
  signal?: AbortSignal;
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
    const outcome = await attempt(port, deadline, opts.signal);
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
  deadline: number,
  signal: AbortSignal | undefined,
): Promise<TcpLink | "failed" | "aborted"> {
  if (signal?.aborted) return "aborted";
  const connecting = TcpLink.open(port);
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
 * A connected TCP link to a child. The socket is the child's input (a byte sink that takes what the socket buffer
 * takes, and says when it drained) and its output (a source fed by the socket's data callback). `closed` settles
 * when the connection ends from either side, or fails (`error` then says why).
 */
export class TcpLink implements Link {
  readonly closed: Promise<void>;
  readonly endStopsChild = true;
  /** Why the connection ended, when it failed rather than closed. */
  error: Error | null = null;
  readonly input: ByteSink;
  /** What arrives before the output is read is kept for it (bounded): a child may speak first. */
  readonly output: PushedSource;
  private socket: Socket<undefined> | null = null;
  private settle: () => void = () => {};
  private isClosed = false;

  private constructor(readonly port: number) {
    this.closed = new Promise((resolve) => {
      this.settle = resolve;
    });
    const link = this;
    this.input = {
      pending: 0,
      ondrain: null,
      write(chunk, size) {
        const socket = link.socket;
        if (socket === null || link.isClosed) return -1;
        const written = socket.write(chunk);
        if (written < 0) {
          link.ended(null); // the socket closed under us; its close callback may still follow
          return -1;
        }
        // Bun's write reports bytes for a string too; a short write resumes on the socket's drain.
        return Math.min(written, size);
      },
      // shutdown(2), not end(): Bun's end() closes the socket, losing the child's answer to what was sent last
      // (and resetting the child's connection when that answer arrives).
      end() {
        if (!link.isClosed) link.socket?.shutdown();
      },
    };
    this.output = new PushedSource(this.closed);
  }

  /** One connect attempt; rejects as `Bun.connect` does (ECONNREFUSED while nothing listens). */
  static async open(port: number): Promise<TcpLink> {
    const link = new TcpLink(port);
    link.socket = await Bun.connect({
      hostname: CHILD_HOST,
      port,
      socket: {
        binaryType: "uint8array",
        data: (_socket, chunk) => link.output.push(chunk),
        drain: () => link.input.ondrain?.(),
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

  /** Closes the link at once, dropping anything not yet written. */
  destroy(): void {
    this.socket?.terminate();
    this.ended(null);
  }

  private ended(error: Error | null): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.error ??= error;
    this.settle();
  }
}
