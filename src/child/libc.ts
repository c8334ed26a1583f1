import { constants } from "node:os";

/**
 * The few libc calls Bun has no cheap way to make, through bun:ffi: `pipe2` and `fcntl` for the children's stdio
 * (pipes.ts), `kill` for their process groups, `waitpid` for the exits of children the spawner thread started
 * (spawner.ts). Linux only (glibc or musl); elsewhere {@link libc} is null and
 * callers fall back to Bun's own ways.
 */
export interface Libc {
  pipe2(fds: Int32Array): number;
  /** Makes `fd` non-blocking; false when it could not. */
  nonBlocking(fd: number): boolean;
  /** kill(2): true when the signal was sent. */
  kill(pid: number, signal: number): boolean;
  /**
   * waitpid(pid, WNOHANG): the wait status once the child `pid` ended (it is reaped then), null while it runs,
   * -1 when it cannot be waited for.
   */
  reap(pid: number): number | null;
  /**
   * waitid(P_ALL, WEXITED | WNOHANG | WNOWAIT): the pid of some child that has exited and is not reaped yet,
   * leaving it so; 0 when there is none, -1 when there are no children at all.
   */
  exitedChild(): number;
}

/** libc names bun:ffi can open, most likely first: glibc, musl (x64, arm64). */
const LIBC_NAMES = ["libc.so.6", "libc.musl-x86_64.so.1", "libc.musl-aarch64.so.1"];
const O_CLOEXEC = 0o2000000;
const F_GETFL = 3;
const F_SETFL = 4;
const O_NONBLOCK = 0o4000;
const WNOHANG = 1;
const WEXITED = 4;
const WNOWAIT = 0x1000000;
const P_ALL = 0;
/** waitid's siginfo_t (128 bytes), and where its si_pid is on 64-bit Linux (after three ints and padding). */
const siginfo = new Int32Array(32);
const SI_PID = 4;
/** waitpid's status out-parameter, one for every call. */
const status = new Int32Array(1);

let loaded: Libc | null | undefined;

/** libc, loaded on the first call; null where it cannot be (not Linux, an unknown libc). */
export function libc(): Libc | null {
  if (loaded === undefined) loaded = load();
  return loaded;
}

/** Linux only: macOS has no pipe2. */
function load(): Libc | null {
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
        // Variadic in C; called with one int argument, as the Linux ABIs allow.
        fcntl: { args: [i32, i32, i32], returns: i32 },
        kill: { args: [i32, i32], returns: i32 },
        waitpid: { args: [i32, pointer, i32], returns: i32 },
        waitid: { args: [i32, i32, pointer, i32], returns: i32 },
      });
      const { ptr } = ffi;
      return {
        // Close-on-exec: no other child inherits these; Bun.spawn dup2s the child's ends onto its stdio.
        pipe2: (fds) => symbols.pipe2(ptr(fds), O_CLOEXEC),
        nonBlocking: (fd) => {
          const flags = symbols.fcntl(fd, F_GETFL, 0);
          return flags !== -1 && symbols.fcntl(fd, F_SETFL, flags | O_NONBLOCK) !== -1;
        },
        kill: (pid, signal) => symbols.kill(pid, signal) === 0,
        reap: (pid) => {
          const r = symbols.waitpid(pid, ptr(status), WNOHANG);
          return r === 0 ? null : r === pid ? (status[0] as number) : -1;
        },
        exitedChild: () => {
          siginfo[SI_PID] = 0;
          if (symbols.waitid(P_ALL, 0, ptr(siginfo), WEXITED | WNOHANG | WNOWAIT) !== 0) return -1;
          return siginfo[SI_PID] as number;
        },
      };
    } catch {
      // not this libc; try the next name
    }
  }
  return null;
}

/**
 * Sends `signal` to the process group `pgid`; false when the group is gone (or may not be signalled). Through
 * libc where it is loaded: `process.kill` says a group is gone by throwing, and a room that closes asks once its
 * child is usually gone already; the throw costs several times the call (docs/performance.md).
 */
export function killGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  const sys = libc();
  if (sys !== null) return sys.kill(-pgid, signal === 0 ? 0 : constants.signals[signal]);
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}
