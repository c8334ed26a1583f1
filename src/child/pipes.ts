import { closeSync, writeSync } from "node:fs";
import type { FileSink } from "bun";
import type { ByteSink } from "../writer.ts";
import { type Libc, libc } from "./libc.ts";

/**
 * Plain OS pipes for a child's stdio, made with `pipe2(2)` through bun:ffi.
 *
 * Why not Bun.spawn's own `"pipe"`: Bun connects a child's stdio with unix socket pairs, and a round trip through
 * a socket pair costs both the server and the child more kernel time than through a pipe
 * (`bun scripts/bench/pipes.ts`). Sockets also break a common idiom: a script's `echo oops > /dev/stderr` (or
 * `> /dev/stdout`) opens `/proc/self/fd/N`, which fails for a socket (ENXIO) and works for a pipe, as it does
 * under upstream ScaleSocket and websocketd. Bun.spawn takes descriptors for stdio; we read stdout and stderr
 * with `Bun.file(fd).stream()`, and write stdin ourselves (stdin.ts) on our end, made non-blocking.
 *
 * Where libc cannot be loaded (not Linux, an unknown libc), {@link openStdio} returns null and the child falls back
 * to Bun's own pipes: the same behaviour (but for that idiom), only slower.
 */

/** The two ends of one pipe. Each end is closed once, by whoever owns it. */
export interface Pipe {
  read: OwnedFd;
  write: OwnedFd;
}

/**
 * A file descriptor with exactly one owner and one close. Closing a number twice could close a descriptor that
 * was opened since under the same number (another child's pipe), so the second close is a no-op.
 */
export class OwnedFd {
  private open = true;

  constructor(readonly fd: number) {}

  close(): void {
    if (!this.open) return;
    this.open = false;
    try {
      closeSync(this.fd);
    } catch {
      // already gone (EBADF): nothing else can be holding this number
    }
  }
}

const fds = new Int32Array(2);

/** Whether OS pipes can be made here (loads libc on the first call). */
export function pipesAvailable(): boolean {
  return libc() !== null;
}

/** A new pipe; only once {@link pipesAvailable} said yes. Throws when the system refuses one. */
function makePipe(): Pipe {
  if ((libc() as Libc).pipe2(fds) !== 0) throw new Error("cannot create a pipe (out of file descriptors?)");
  return { read: new OwnedFd(fds[0] as number), write: new OwnedFd(fds[1] as number) };
}

/** A pipe for the child's stdin: its end blocks as any stdin does, ours does not (stdin.ts writes it directly). */
function makeStdinPipe(): Pipe {
  const pipe = makePipe();
  if (!(libc() as Libc).nonBlocking(pipe.write.fd)) {
    closePipes(pipe);
    throw new Error("cannot make the stdin pipe non-blocking");
  }
  return pipe;
}

/** A new pipe, or null when this platform's libc is out of reach. Throws when the system refuses one. */
export function openPipe(): Pipe | null {
  return pipesAvailable() ? makePipe() : null;
}

/** The stdio pipes of one child. */
export interface ChildPipes {
  /** A pipe, non-blocking on our end; null for a `--tcp` child, whose stdin is not used. */
  stdin: Pipe | null;
  stdout: Pipe;
  stderr: Pipe;
}

/**
 * Pipes for a child's stdin (when `withStdin`), stdout and stderr; null when no OS pipe can be made here (Bun's
 * pipes are used then). On failure nothing stays open.
 */
export function openStdio(withStdin: boolean): ChildPipes | null {
  if (!pipesAvailable()) return null;
  const opened: Pipe[] = [];
  const open = (make: () => Pipe): Pipe => {
    const pipe = make();
    opened.push(pipe);
    return pipe;
  };
  try {
    return {
      stdout: open(makePipe),
      stderr: open(makePipe),
      stdin: withStdin ? open(makeStdinPipe) : null,
    };
  } catch (err) {
    closePipes(...opened);
    throw err;
  }
}

/** Closes the ends the child got, once it has them: ours must not keep them open, or its stdin never sees EOF. */
export function closeChildEnds(pipes: ChildPipes): void {
  pipes.stdin?.read.close();
  pipes.stdout.write.close();
  pipes.stderr.write.close();
}

/** Closes both ends of each pipe given (those already closed stay closed). */
export function closePipes(...pipes: (Pipe | null)[]): void {
  for (const pipe of pipes) {
    pipe?.read.close();
    pipe?.write.close();
  }
}

/**
 * Our end of the child's stdin pipe (non-blocking, see {@link openStdio}) as a byte sink, written with plain
 * write(2) calls: its writer joins messages per event-loop turn, so that is one call per turn. Only when the pipe
 * is full does a Bun FileSink take the rest and wait for the pipe to drain (Bun offers no other way to be told);
 * meanwhile the sink takes nothing more, and the rest counts as `pending`.
 *
 * Bun's FileSink is not used for every write: it re-arms an epoll registration before each one, and making and
 * ending one costs more than the write itself. The descriptor is closed by {@link end}, once what the FileSink
 * holds is written.
 */
export class PipeSink implements ByteSink {
  ondrain: (() => void) | null = null;
  private waiting: FileSink | null = null;
  private held = 0;
  private ended = false;

  constructor(private readonly fd: OwnedFd) {}

  get pending(): number {
    return this.held;
  }

  write(chunk: string | Uint8Array, size: number): number {
    if (this.ended) return -1;
    if (this.waiting !== null) return 0;
    let written = 0;
    try {
      // The same call twice: writeSync's two overloads take a string or bytes, not the union.
      written = typeof chunk === "string" ? writeSync(this.fd.fd, chunk) : writeSync(this.fd.fd, chunk);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EAGAIN") {
        this.close(); // EPIPE: the child closed its stdin
        return -1;
      }
    }
    if (written < size) this.park((typeof chunk === "string" ? Buffer.from(chunk) : chunk).subarray(written));
    return size;
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    const waiting = this.waiting;
    this.waiting = null;
    if (waiting === null) {
      this.fd.close();
      return;
    }
    // What a full pipe still holds goes out first; then our descriptor is closed.
    let ending: unknown;
    try {
      ending = waiting.end();
    } catch {}
    const release = (): void => this.fd.close();
    if (ending instanceof Promise) ending.then(release, release);
    else release();
  }

  /** Hands the rest of a short write to a FileSink, which writes it as the pipe drains. */
  private park(rest: Uint8Array): void {
    const waiting = Bun.file(this.fd.fd).writer();
    this.waiting = waiting;
    this.held = rest.byteLength;
    waiting.write(rest);
    const flushed = waiting.flush();
    const drained = (): void => {
      if (this.waiting !== waiting) return;
      this.waiting = null;
      this.held = 0;
      // The FileSink closes its own copy of the descriptor; ours stays open for direct writes again.
      waiting.end();
      this.ondrain?.();
    };
    if (flushed instanceof Promise) flushed.then(drained, () => this.close());
    else drained();
  }

  private close(): void {
    this.ended = true;
    this.waiting = null;
    this.held = 0;
    this.fd.close();
  }
}
