/**
 * The spawner thread's code (spawner.ts), as a string it is started from: a Worker made from a Blob needs no file
 * beside the standalone binary.
 */

/**
 * The worker, plain JS. Where libc loads and the request says its exits will be reaped by the main thread, the
 * child starts through libc's `posix_spawn` (glibc's and musl's use vfork, as Bun.spawn does, without the
 * Subprocess object, the pidfd and the epoll registration Bun adds to each child): stdio dup2'd by file actions
 * (from the pipes it makes for the child when the request asks for pipes), a new session (so a process group of
 * its own, as Bun.spawn's `detached`), every signal at its default and none blocked. Otherwise Bun.spawn, whose
 * exit the worker reports.
 */
export const WORKER_SOURCE = `
const native = loadNative();

function loadNative() {
  if (process.platform !== "linux") return null;
  let ffi;
  try { ffi = require("bun:ffi"); } catch { return null; }
  const { constants } = require("node:os");
  const { i32, i16, ptr } = ffi.FFIType;
  for (const name of ["libc.so.6", "libc.musl-x86_64.so.1", "libc.musl-aarch64.so.1"]) {
    let sym;
    try {
      sym = ffi.dlopen(name, {
        posix_spawn: { args: [ptr, ptr, ptr, ptr, ptr, ptr], returns: i32 },
        posix_spawn_file_actions_init: { args: [ptr], returns: i32 },
        posix_spawn_file_actions_adddup2: { args: [ptr, i32, i32], returns: i32 },
        posix_spawn_file_actions_destroy: { args: [ptr], returns: i32 },
        posix_spawnattr_init: { args: [ptr], returns: i32 },
        posix_spawnattr_setflags: { args: [ptr, i16], returns: i32 },
        posix_spawnattr_setsigdefault: { args: [ptr, ptr], returns: i32 },
        posix_spawnattr_setsigmask: { args: [ptr, ptr], returns: i32 },
        pipe2: { args: [ptr, i32], returns: i32 },
        // Variadic in C; called with one int argument, as the Linux ABIs allow.
        fcntl: { args: [i32, i32, i32], returns: i32 },
        close: { args: [i32], returns: i32 },
      }).symbols;
    } catch { continue; }
    const p = ffi.ptr;
    // Opaque libc structs, sized generously for glibc and musl; only libc's own calls touch them.
    const attr = new Uint8Array(1024);
    const actions = new Uint8Array(1024);
    const all = new Uint8Array(128).fill(0xff);
    const none = new Uint8Array(128);
    // POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSID: the same values in glibc and musl.
    if (sym.posix_spawnattr_init(p(attr)) !== 0 ||
        sym.posix_spawnattr_setflags(p(attr), 0x04 | 0x08 | 0x80) !== 0 ||
        sym.posix_spawnattr_setsigdefault(p(attr), p(all)) !== 0 ||
        sym.posix_spawnattr_setsigmask(p(attr), p(none)) !== 0) return null;
    const errnoNames = new Map(Object.entries(constants.errno).map(([k, v]) => [v, k]));
    return { sym, p, attr, actions, errnoNames, pid: new Int32Array(1) };
  }
  return null;
}

/** Where each NUL-terminated string of the request starts. */
function offsets(strings) {
  const out = [];
  for (let at = 0; at < strings.length; ) {
    out.push(at);
    at = strings.indexOf(0, at) + 1;
    if (at === 0) break;
  }
  return out;
}

const O_CLOEXEC = 0o2000000;
const O_NONBLOCK = 0o4000;
const F_GETFL = 3;
const F_SETFL = 4;

/**
 * The child's stdio pipes, made here right before it starts, so that a room still waiting in this thread's queue
 * holds no descriptor: the child's ends (what it gets) and ours (the stdin one non-blocking; -1 for no stdin).
 * Close-on-exec, so no other child inherits them. Nothing stays open when one cannot be made.
 */
function makePipes(withStdin) {
  const { sym, p } = native;
  const made = [];
  const pipe = () => {
    const fds = new Int32Array(2);
    if (sym.pipe2(p(fds), O_CLOEXEC) !== 0) throw new Error("cannot create a pipe (out of file descriptors?)");
    made.push(fds[0], fds[1]);
    return fds;
  };
  try {
    const out = pipe();
    const err = pipe();
    const inp = withStdin ? pipe() : null;
    if (inp !== null) {
      const flags = sym.fcntl(inp[1], F_GETFL, 0);
      if (flags === -1 || sym.fcntl(inp[1], F_SETFL, flags | O_NONBLOCK) === -1)
        throw new Error("cannot make the stdin pipe non-blocking");
    }
    return {
      child: [inp === null ? "ignore" : inp[0], out[1], err[1]],
      ours: [inp === null ? -1 : inp[1], out[0], err[0]],
    };
  } catch (e) {
    for (const fd of made) sym.close(fd);
    throw e;
  }
}

function closeAll(fds) {
  for (const fd of fds) if (typeof fd === "number" && fd >= 0) native.sym.close(fd);
}

function spawnNative(data, stdio) {
  const { sym, p, attr, actions } = native;
  const starts = offsets(data.strings);
  // One string more than sent: an argument or a variable held a NUL, which no C string can (Bun.spawn refuses too).
  if (starts.length !== data.count) throw new Error("EINVAL: an argument or variable contains a NUL byte");
  const base = p(data.strings);
  // argv, NULL, envp, NULL: pointers into the request's own buffer.
  const words = new BigUint64Array(starts.length + 2);
  for (let i = 0; i < starts.length; i++) words[i < data.argc ? i : i + 1] = BigInt(base + starts[i]);
  const fa = p(actions);
  if (sym.posix_spawn_file_actions_init(fa) !== 0) throw new Error("ENOMEM: cannot start a child");
  let err;
  try {
    for (let i = 0; i < 3; i++) {
      const fd = stdio[i];
      if (typeof fd === "number") sym.posix_spawn_file_actions_adddup2(fa, fd, i);
    }
    err = sym.posix_spawn(p(native.pid), base, fa, p(attr), p(words), p(words, (data.argc + 1) * 8));
  } finally {
    sym.posix_spawn_file_actions_destroy(fa);
  }
  if (err !== 0) throw new Error((native.errnoNames.get(err) || "E" + err) + ": posix_spawn");
  return native.pid[0];
}

/** The request's strings back as argv and env, for Bun.spawn. */
function decode(data) {
  const all = new TextDecoder().decode(data.strings).split("\\0");
  if (all.length !== data.count + 1) throw new Error("EINVAL: an argument or variable contains a NUL byte");
  const env = {};
  for (const entry of all.slice(data.argc, -1)) {
    const eq = entry.indexOf("=");
    env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return { argv: all.slice(0, data.argc), env };
}

self.onmessage = ({ data }) => {
  const piped = !Array.isArray(data.stdio);
  if (native !== null && data.reaped) {
    let pid;
    let pipes = null;
    try {
      pipes = piped ? makePipes(data.stdio.stdin) : null;
      pid = spawnNative(data, pipes === null ? data.stdio : pipes.child);
    } catch (err) {
      if (pipes !== null) closeAll(pipes.ours);
      postMessage({ id: data.id, error: String((err && err.message) || err) });
      return;
    } finally {
      // The child has its ends (or never will): ours must not keep them open, or its stdin never sees EOF.
      if (pipes !== null) closeAll(pipes.child);
    }
    postMessage({ id: data.id, pid, reaped: true, fds: pipes === null ? null : pipes.ours });
    return;
  }
  if (piped) {
    // Pipes need libc here: the main thread starts this child itself.
    postMessage({ id: data.id, error: "the spawner thread cannot make pipes", gone: true });
    return;
  }
  let proc;
  try {
    const { argv, env } = decode(data);
    proc = Bun.spawn(argv, { env, stdio: data.stdio, detached: true });
  } catch (err) {
    postMessage({ id: data.id, error: String((err && err.message) || err) });
    return;
  }
  postMessage({ id: data.id, pid: proc.pid, reaped: false });
  proc.exited.then(() => postMessage({
    id: data.id,
    code: proc.exitCode,
    signal: proc.signalCode === null ? null : String(proc.signalCode),
  }));
};
`;
