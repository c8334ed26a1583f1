import { closeSync } from "node:fs";

/**
 * The OS channels for a child's stdio, made through bun:ffi: a plain pipe (`pipe2(2)`) for its stdin, and for its
 * stdout and stderr one unix socket pair each, used one way (the child writes, we read).
 *
 * Why not Bun.spawn's own `"pipe"`: Bun connects all three with socket pairs and reads them through a
 * ReadableStream, which costs a `poll` and two `epoll_ctl` per chunk read (it re-arms a one-shot registration),
 * and its stdin sink one `epoll_ctl` per write. Writing a pipe is cheaper than writing a socket for both sides,
 * so stdin is a pipe, written directly (stdin.ts). Reading is cheapest through Bun's own socket layer
 * (`Bun.connect({ fd })`: one `recv` per chunk, a registration that stays armed), which only takes sockets, so
 * stdout and stderr are socket pairs. `bun scripts/bench-pipes.ts` measures the kinds against each other.
 *
 * Where libc cannot be loaded (not Linux, an unknown libc), {@link openStdio} returns null and the child falls back
 * to Bun's own pipes: the same behaviour, only slower.
 */

/**
 * The two ends of one channel: `read` is the end data comes out of, `write` the end it goes into (for a socket
 * pair, which carries both ways, the ends as this channel uses them). Each end is closed once, by its owner.
 */
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

  /** Hands the descriptor to something that closes it itself (a Bun socket); from now on close() is a no-op. */
  giveAway(): number {
    this.open = false;
    return this.fd;
  }

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

interface Libc {
  pipe2(fds: Int32Array): number;
  socketpair(fds: Int32Array): number;
  /** Makes `fd` non-blocking; false when it could not. */
  nonBlocking(fd: number): boolean;
}

/** libc names bun:ffi can open, most likely first: glibc, musl (x64, arm64). */
const LIBC_NAMES = ["libc.so.6", "libc.musl-x86_64.so.1", "libc.musl-aarch64.so.1"];
const O_CLOEXEC = 0o2000000;
const AF_UNIX = 1;
const SOCK_STREAM = 1;
/** Same value as O_CLOEXEC on Linux. */
const SOCK_CLOEXEC = 0o2000000;
const F_GETFL = 3;
const F_SETFL = 4;
const O_NONBLOCK = 0o4000;

let libc: Libc | null | undefined;

/** Linux only: macOS has no pipe2, and its socketpair takes no close-on-exec flag. */
function loadLibc(): Libc | null {
  if (process.platform !== "linux") return null;
  let ffi: typeof import("bun:ffi");
  try {
    ffi = require("bun:ffi");
  } catch {
    return null;
  }
  const { i32, ptr: pointer } = ffi.FFIType;
  for (const name of LIBC_NAMES) {
    try {
      const { symbols } = ffi.dlopen(name, {
        pipe2: { args: [pointer, i32], returns: i32 },
        socketpair: { args: [i32, i32, i32, pointer], returns: i32 },
        // Variadic in C; called with one int argument, as the Linux ABIs allow.
        fcntl: { args: [i32, i32, i32], returns: i32 },
      });
      const { ptr } = ffi;
      // Close-on-exec: no other child inherits these; Bun.spawn dup2s the child's ends onto its stdio.
      return {
        pipe2: (fds) => symbols.pipe2(ptr(fds), O_CLOEXEC),
        socketpair: (fds) => symbols.socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ptr(fds)),
        nonBlocking: (fd) => {
          const flags = symbols.fcntl(fd, F_GETFL, 0);
          return flags !== -1 && symbols.fcntl(fd, F_SETFL, flags | O_NONBLOCK) !== -1;
        },
      };
    } catch {
      // not this libc; try the next name
    }
  }
  return null;
}

const fds = new Int32Array(2);

/** Whether OS channels can be made here (loads libc on the first call). */
export function pipesAvailable(): boolean {
  if (libc === undefined) libc = loadLibc();
  return libc !== null;
}

/** A new pipe; only once {@link pipesAvailable} said yes. Throws when the system refuses one. */
function makePipe(): Pipe {
  if ((libc as Libc).pipe2(fds) !== 0) throw new Error("cannot create a pipe (out of file descriptors?)");
  return { read: new OwnedFd(fds[0] as number), write: new OwnedFd(fds[1] as number) };
}

/** A pipe for the child's stdin: its end blocks as any stdin does, ours does not (stdin.ts writes it directly). */
function makeStdinPipe(): Pipe {
  const pipe = makePipe();
  if (!(libc as Libc).nonBlocking(pipe.write.fd)) {
    closePipes(pipe);
    throw new Error("cannot make the stdin pipe non-blocking");
  }
  return pipe;
}

/**
 * A new socket pair used one way, for output the child writes (`write`, its end) and we read (`read`); only once
 * {@link pipesAvailable} said yes. Throws when the system refuses one.
 */
function makeSocketPair(): Pipe {
  if ((libc as Libc).socketpair(fds) !== 0)
    throw new Error("cannot create a socket pair (out of file descriptors?)");
  return { read: new OwnedFd(fds[0] as number), write: new OwnedFd(fds[1] as number) };
}

/** A new pipe, or null when this platform's libc is out of reach. Throws when the system refuses one. */
export function openPipe(): Pipe | null {
  return pipesAvailable() ? makePipe() : null;
}

/** A new socket pair for output, or null when this platform's libc is out of reach. Throws when refused. */
export function openSocketPair(): Pipe | null {
  return pipesAvailable() ? makeSocketPair() : null;
}

/** The stdio channels of one child. */
export interface ChildPipes {
  /** A pipe, non-blocking on our end; null for a `--tcp` child, whose stdin is not used. */
  stdin: Pipe | null;
  /** Socket pairs, read with `Bun.connect({ fd })`. */
  stdout: Pipe;
  stderr: Pipe;
}

/**
 * Channels for a child's stdin (when `withStdin`), stdout and stderr; null when none can be made here (Bun's
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
      stdout: open(makeSocketPair),
      stderr: open(makeSocketPair),
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
