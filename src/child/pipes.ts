import { closeSync } from "node:fs";

/**
 * Plain OS pipes for a child's stdio, made with `pipe2(2)` through bun:ffi.
 *
 * Why not Bun.spawn's own `"pipe"`: Bun connects a child's stdin and stdout with unix socketpairs, and a round
 * trip through a socketpair costs both the server and the child more kernel time than through a pipe
 * (`bun scripts/bench-pipes.ts`: 18.5–25.9 µs per round trip through `cat` over pipes, 29.4–40.7 µs over
 * socketpairs, Bun 1.4.5). Bun.spawn takes file descriptors for stdio, and `Bun.file(fd)` reads and writes
 * them without blocking the event loop, so only creating the pipe needs libc.
 *
 * Where libc cannot be loaded (Windows, an unknown libc), {@link openPipe} returns null and the child falls back to
 * Bun's own pipes: the same behaviour, only slower.
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

type Pipe2 = (fds: Int32Array) => number;

/** libc names bun:ffi can open, most likely first: glibc, musl (x64, arm64), macOS. */
const LIBC_NAMES: Record<string, readonly string[]> = {
  linux: ["libc.so.6", "libc.musl-x86_64.so.1", "libc.musl-aarch64.so.1"],
  darwin: ["libc.dylib"],
};

const O_CLOEXEC: Record<string, number> = { linux: 0o2000000, darwin: 0x1000000 };

let pipe2: Pipe2 | null | undefined;

function loadPipe2(): Pipe2 | null {
  const names = LIBC_NAMES[process.platform];
  const cloexec = O_CLOEXEC[process.platform];
  if (!names || cloexec === undefined) return null;
  let ffi: typeof import("bun:ffi");
  try {
    ffi = require("bun:ffi");
  } catch {
    return null;
  }
  for (const name of names) {
    try {
      const lib = ffi.dlopen(name, {
        pipe2: { args: [ffi.FFIType.ptr, ffi.FFIType.i32], returns: ffi.FFIType.i32 },
      });
      const call = lib.symbols.pipe2;
      const { ptr } = ffi;
      // O_CLOEXEC: no other child inherits this pipe; Bun.spawn dup2s the child's end onto its stdio.
      return (fds) => call(ptr(fds), cloexec);
    } catch {
      // not this libc; try the next name
    }
  }
  return null;
}

const fds = new Int32Array(2);

/** Whether OS pipes can be made here (loads libc on the first call). */
export function pipesAvailable(): boolean {
  if (pipe2 === undefined) pipe2 = loadPipe2();
  return pipe2 !== null;
}

/** A new pipe; only once {@link pipesAvailable} said yes. Throws when the system refuses one. */
function makePipe(): Pipe {
  if ((pipe2 as Pipe2)(fds) !== 0) throw new Error("cannot create a pipe (out of file descriptors?)");
  return { read: new OwnedFd(fds[0] as number), write: new OwnedFd(fds[1] as number) };
}

/** A new pipe, or null when this platform's libc is out of reach. Throws when the system refuses a pipe. */
export function openPipe(): Pipe | null {
  return pipesAvailable() ? makePipe() : null;
}

/** The stdio pipes of one child. */
export interface ChildPipes {
  /** Null for a `--tcp` child, whose stdin is not used. */
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
  const open = (): Pipe => {
    const pipe = makePipe();
    opened.push(pipe);
    return pipe;
  };
  try {
    return { stdout: open(), stderr: open(), stdin: withStdin ? open() : null };
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
