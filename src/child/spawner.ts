import { constants } from "node:os";
import { type Libc, libc } from "./libc.ts";
import type { ExitInfo, ProcessStarter, StartedProcess, StdioPipes } from "./link.ts";
import { OwnedFd } from "./pipes.ts";
import { WORKER_SOURCE } from "./spawner-worker.ts";

/**
 * Starts children on a worker thread instead of the server's event loop.
 *
 * Starting a child holds the thread that does it until the child has exec'd (vfork), longer when both CPUs are
 * busy, and on the main thread no websocket of any room moves meanwhile. Websocketd's Go runtime blocks only the
 * goroutine that spawns. Done here, a room that opens costs the other rooms only the message to the worker. The
 * child's stdio are OS pipes, which the worker makes right before the start when asked to (so a room waiting in
 * its queue holds no descriptor), or whose numbers it is given; reading and writing stay on the main thread.
 *
 * The thread is woken once per child, and that wake-up, not the start itself, is most of what it costs: so the
 * request is one buffer the worker takes as it is (argv and the environment as C strings, transferred, not copied
 * string by string), the worker answers once (the pid), and where libc is loaded the exits are learned here on
 * the main thread, on SIGCHLD, rather than by a second message from the worker: one `waitid(WNOWAIT)` says whether
 * any child exited, and `waitpid(pid, WNOHANG)` reaps ours by pid (never `waitpid(-1)`, which would take the exits
 * of Bun's own children). Without Bun.spawn there is no pidfd either: a room holds one descriptor fewer.
 */

export interface SpawnRequest {
  argv: string[];
  env: Record<string, string>;
  /**
   * The child's stdin, stdout and stderr: descriptors it gets (its ends of our pipes), or "ignore"; or pipes the
   * thread makes right before the start, so that a request waiting in its queue holds no descriptor.
   */
  stdio: [number | "ignore", number, number] | StdioPipes;
}

/**
 * How often the main thread looks for exited children without being told: a child's exit is noticed on its SIGCHLD,
 * and this slow look is only the net under a signal that never came. A look walks every child of the process in
 * the kernel: every 5 ms, as it once was, an idle server with 1,000 `cat` rooms used 90 ms of CPU per 5 s, against
 * 20 ms with this.
 */
const REAP_SAFETY_MS = 200;

type Reply =
  | { id: number; pid: number; reaped: boolean; fds?: [number, number, number] | null }
  | { id: number; error: string; gone?: true }
  | { id: number; code: number | null; signal: string | null };

interface Pending {
  resolve: (started: StartedProcess) => void;
  reject: (err: Error) => void;
}

/**
 * Children Bun itself started and reaps (a `--pty` child, one started on the main thread or by the worker with
 * Bun.spawn): never reaped here, not even as PID 1, or Bun would never learn how they ended.
 */
const bunChildren = new Set<number>();

/** Registers a child Bun started, until Bun has seen it exit. */
export function startedByBun(pid: number, exited: Promise<unknown>): void {
  bunChildren.add(pid);
  const forget = (): void => void bunChildren.delete(pid);
  exited.then(forget, forget);
}

/** The spawner thread is gone: a child it was asked to start is started on the main thread instead. */
export class SpawnerGone extends Error {
  override name = "SpawnerGone";
}

/** What a child whose worker is gone is reported as: it can no longer be watched, so its room ends. */
const LOST: ExitInfo = { code: null, signal: null };

const encoder = new TextEncoder();

const signalNames = new Map(Object.entries(constants.signals).map(([name, n]) => [n as number, name]));

/** argv then the environment as NUL-terminated strings in one buffer, the form posix_spawn takes them in. */
function encodeRequest(
  argv: readonly string[],
  env: Record<string, string>,
): { strings: Uint8Array; count: number } {
  let text = "";
  let count = argv.length;
  for (const arg of argv) text += `${arg}\0`;
  for (const key in env) {
    text += `${key}=${env[key]}\0`;
    count++;
  }
  return { strings: encoder.encode(text), count };
}

/** How a wait status (waitpid's) reads: the exit code, or the signal that ended the child. */
export function exitOf(status: number): ExitInfo {
  const signal = status & 0x7f;
  if (signal === 0) return { code: (status >> 8) & 0xff, signal: null };
  return { code: null, signal: signalNames.get(signal) ?? String(signal) };
}

/**
 * The server's one spawner thread. `spawn` resolves once the child runs (or rejects with why it could not start);
 * the child's `exited` settles once it was seen to exit. Owned by the server: {@link close} after its last child
 * is gone.
 */
export class Spawner implements ProcessStarter {
  private readonly worker: Worker;
  private readonly url: string;
  private nextId = 1;
  private readonly starting = new Map<number, Pending>();
  /** Children whose exit the worker reports (started with Bun.spawn there), by request id. */
  private readonly running = new Map<number, (exit: ExitInfo) => void>();
  /** Children whose exit this thread reaps, by pid. */
  private readonly reaped = new Map<number, (exit: ExitInfo) => void>();
  private reaper: Timer | null = null;
  /** Whether this thread can reap children (libc is loaded): the worker then starts them with posix_spawn. */
  private readonly canReap = libc() !== null;
  private failed: Error | null = null;
  /** Whether exited processes that are not ours nor Bun's are reaped too (see {@link reap}). */
  private readonly orphans: boolean;
  /** Orphaned processes reaped so far. */
  orphansReaped = 0;

  /**
   * `safetyMs`: how often to look for exits no SIGCHLD announced (see REAP_SAFETY_MS). `reapOrphans`: whether this
   * process is where orphans go (PID 1 of a container run without an init, or a subreaper), so that it reaps
   * them.
   */
  constructor(
    private readonly onFailure: (err: Error) => void,
    private readonly safetyMs = REAP_SAFETY_MS,
    reapOrphans = process.pid === 1,
  ) {
    this.orphans = reapOrphans && this.canReap;
    // The worker loads its code after the constructor returns: the URL stays valid until close().
    this.url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "application/javascript" }));
    this.worker = new Worker(this.url);
    // The thread never keeps the process alive by itself: the server's children do, through their rooms.
    this.worker.unref();
    this.worker.onmessage = (e: MessageEvent<Reply>) => this.receive(e.data);
    this.worker.onerror = (e) => this.fail(new SpawnerGone(e.message || "spawner thread error"));
    // Ended by anything but close(): the children it started can no longer be watched.
    this.worker.addEventListener("close", () => this.fail(new SpawnerGone("the spawner thread ended")));
    // Listening from the start: a child that exits before its pid is known is found by watch() itself.
    if (this.canReap) process.on("SIGCHLD", this.onChildSignal);
    // Orphans may come at any time, rooms or not; the slow look also covers the time a zombie of Bun's own
    // hides the others from waitid (below).
    if (this.orphans) this.startLooking();
  }

  /** False once the worker failed (or was closed): children are then started on the main thread. */
  get usable(): boolean {
    return this.failed === null;
  }

  spawn(request: SpawnRequest): Promise<StartedProcess> {
    if (this.failed) return Promise.reject(this.failed);
    const id = this.nextId++;
    const { strings, count } = encodeRequest(request.argv, request.env);
    return new Promise((resolve, reject) => {
      this.starting.set(id, { resolve, reject });
      this.worker.postMessage(
        { id, strings, count, argc: request.argv.length, stdio: request.stdio, reaped: this.canReap },
        [strings.buffer as ArrayBuffer],
      );
    });
  }

  /** Ends the thread; the server calls it once every child is gone. */
  close(): void {
    this.failed ??= new SpawnerGone("the spawner is closed");
    this.worker.terminate();
    URL.revokeObjectURL(this.url);
    process.off("SIGCHLD", this.onChildSignal);
    if (this.reaper !== null) clearInterval(this.reaper);
    this.reaper = null;
  }

  /** Some child exited (ours, Bun's own, or an orphan); signals that arrive together are delivered once. */
  private readonly onChildSignal = (): void => {
    if (this.reaped.size > 0 || this.orphans) this.reap();
  };

  private startLooking(): void {
    if (this.reaper !== null) return;
    this.reaper = setInterval(() => this.reap(), this.safetyMs);
    // Like the thread: the children keep the process alive through their rooms, not this timer.
    this.reaper.unref();
  }

  private receive(reply: Reply): void {
    if ("pid" in reply) {
      const pending = this.starting.get(reply.id);
      this.starting.delete(reply.id);
      const exited = new Promise<ExitInfo>((resolve) => {
        if (reply.reaped) this.watch(reply.pid, resolve);
        else this.running.set(reply.id, resolve);
      });
      if (!reply.reaped) startedByBun(reply.pid, exited);
      const fds = reply.fds ?? null;
      const pipes =
        fds === null ? undefined : { stdin: fds[0] < 0 ? null : fds[0], stdout: fds[1], stderr: fds[2] };
      if (pending !== undefined) pending.resolve({ pid: reply.pid, exited, pipes });
      // Nobody waits for it any more (the thread was given up meanwhile): its pipes are closed here.
      else for (const fd of fds ?? []) if (fd >= 0) new OwnedFd(fd).close();
    } else if ("error" in reply) {
      const pending = this.starting.get(reply.id);
      this.starting.delete(reply.id);
      if (reply.gone) {
        const gone = new SpawnerGone(reply.error);
        pending?.reject(gone);
        this.fail(gone);
      } else pending?.reject(new Error(reply.error));
    } else {
      const done = this.running.get(reply.id);
      this.running.delete(reply.id);
      done?.({ code: reply.code, signal: reply.signal });
    }
  }

  private watch(pid: number, done: (exit: ExitInfo) => void): void {
    this.reaped.set(pid, done);
    // Its SIGCHLD may have come and gone before its pid was known here: one look at this child alone.
    this.settle(pid, done, (libc() as Libc).reap(pid));
    if (this.reaped.size > 0) this.startLooking();
  }

  /**
   * Reaps the children of ours that exited. One system call tells whether any child at all did; only when the one
   * it names is not ours (Bun reaps its own, on this thread, soon) is each of ours asked, so a server with
   * thousands of rooms does not make thousands of calls a look.
   *
   * Where orphans come to this process (PID 1 without an init: a room's child that leaves a process behind, which
   * then exits), an exited process that is neither ours nor Bun's is an orphan: reaped too, or it would stay a
   * zombie as long as the server runs, and keep its room's process group, so the room's stop, alive. While a
   * zombie of Bun's own is the one waitid names, the others wait for Bun to reap it and the next look.
   */
  private reap(): void {
    const sys = libc();
    for (;;) {
      const pid = sys === null ? -1 : sys.exitedChild();
      if (pid === 0) break;
      const done = pid > 0 ? this.reaped.get(pid) : undefined;
      if (done !== undefined) {
        this.settle(pid, done, (sys as Libc).reap(pid));
        continue;
      }
      if (pid > 0 && this.orphans && !bunChildren.has(pid) && ((sys as Libc).reap(pid) ?? -1) >= 0) {
        this.orphansReaped++;
        continue;
      }
      if (this.reaped.size > 0) this.reapEach();
      break;
    }
    if (this.reaped.size === 0 && this.reaper !== null && !this.orphans) {
      clearInterval(this.reaper);
      this.reaper = null;
    }
  }

  private reapEach(): void {
    const sys = libc();
    for (const [pid, done] of this.reaped) this.settle(pid, done, sys === null ? -1 : sys.reap(pid));
  }

  /** Reports a child's exit from waitpid's answer; null: it still runs. */
  private settle(pid: number, done: (exit: ExitInfo) => void, status: number | null): void {
    if (status === null) return;
    this.reaped.delete(pid);
    done(status < 0 ? LOST : exitOf(status));
  }

  private fail(err: Error): void {
    if (this.failed) return;
    this.failed = err;
    for (const pending of this.starting.values()) pending.reject(err);
    // Children reaped here are still watched; those the worker watched can no longer be.
    for (const done of this.running.values()) done(LOST);
    this.starting.clear();
    this.running.clear();
    this.onFailure(err);
  }
}
