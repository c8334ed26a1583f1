import { closeSync } from "node:fs";
import { type Libc, libc } from "./libc.ts";

/**
 * Plain OS pipes for a child's stdio, made with `pipe2(2)` through bun:ffi.
 *
 * Why not Bun.spawn's own `"pipe"`: Bun connects a child's stdio with unix socket pairs, and a round trip through
 * a socket pair costs both the server and the child more kernel time than through a pipe
 * (`bun scripts/bench-pipes.ts`). Sockets also break a common idiom: a script's `echo oops > /dev/stderr` (or
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
