import type { ExitInfo, ProcessStarter, StartedProcess } from "./link.ts";

/**
 * Starts children on a worker thread instead of the server's event loop.
 *
 * Bun.spawn holds the thread that calls it until the child has exec'd (it uses vfork), longer when both CPUs are
 * busy, and on the main thread no websocket of any room moves meanwhile. Websocketd's Go
 * runtime blocks only the goroutine that spawns. Done here, a room that opens costs the other rooms only the
 * message to the worker. The child's stdio are pipes the server made (pipes.ts), so the worker only needs their
 * numbers: reading and writing stay on the main thread.
 */

export interface SpawnRequest {
  argv: string[];
  env: Record<string, string>;
  /** The child's stdin, stdout and stderr: descriptors it gets (its ends of our pipes), or "ignore". */
  stdio: [number | "ignore", number, number];
}

/** The worker: one Bun.spawn per request, its pid back at once, its exit when it comes. Plain JS, no imports. */
const WORKER_SOURCE = `
self.onmessage = ({ data }) => {
  let proc;
  try {
    proc = Bun.spawn(data.argv, { env: data.env, stdio: data.stdio, detached: true });
  } catch (err) {
    postMessage({ id: data.id, error: String((err && err.message) || err) });
    return;
  }
  postMessage({ id: data.id, pid: proc.pid });
  proc.exited.then(() => postMessage({
    id: data.id,
    code: proc.exitCode,
    signal: proc.signalCode === null ? null : String(proc.signalCode),
  }));
};
`;

type Reply =
  | { id: number; pid: number }
  | { id: number; error: string }
  | { id: number; code: number | null; signal: string | null };

interface Pending {
  resolve: (started: StartedProcess) => void;
  reject: (err: Error) => void;
}

/** The spawner thread is gone: a child it was asked to start is started on the main thread instead. */
export class SpawnerGone extends Error {
  override name = "SpawnerGone";
}

/** What a child whose worker is gone is reported as: it can no longer be watched, so its room ends. */
const LOST: ExitInfo = { code: null, signal: null };

/**
 * The server's one spawner thread. `spawn` resolves once the child runs (or rejects with why it could not start);
 * the child's `exited` settles when the worker saw it exit. Owned by the server: {@link close} after its last
 * child is gone.
 */
export class Spawner implements ProcessStarter {
  private readonly worker: Worker;
  private readonly url: string;
  private nextId = 1;
  private readonly starting = new Map<number, Pending>();
  private readonly running = new Map<number, (exit: ExitInfo) => void>();
  private failed: Error | null = null;

  constructor(private readonly onFailure: (err: Error) => void) {
    // The worker loads its code after the constructor returns: the URL stays valid until close().
    this.url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "application/javascript" }));
    this.worker = new Worker(this.url);
    // The thread never keeps the process alive by itself: the server's children do, through their rooms.
    this.worker.unref();
    this.worker.onmessage = (e: MessageEvent<Reply>) => this.receive(e.data);
    this.worker.onerror = (e) => this.fail(new SpawnerGone(e.message || "spawner thread error"));
    // Ended by anything but close(): the children it started can no longer be watched.
    this.worker.addEventListener("close", () => this.fail(new SpawnerGone("the spawner thread ended")));
  }

  /** False once the worker failed (or was closed): children are then started on the main thread. */
  get usable(): boolean {
    return this.failed === null;
  }

  spawn(request: SpawnRequest): Promise<StartedProcess> {
    if (this.failed) return Promise.reject(this.failed);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.starting.set(id, { resolve, reject });
      this.worker.postMessage({ id, ...request });
    });
  }

  /** Ends the thread; the server calls it once every child is gone. */
  close(): void {
    this.failed ??= new SpawnerGone("the spawner is closed");
    this.worker.terminate();
    URL.revokeObjectURL(this.url);
  }

  private receive(reply: Reply): void {
    if ("pid" in reply) {
      const pending = this.starting.get(reply.id);
      this.starting.delete(reply.id);
      const exited = new Promise<ExitInfo>((resolve) => this.running.set(reply.id, resolve));
      pending?.resolve({ pid: reply.pid, exited });
    } else if ("error" in reply) {
      const pending = this.starting.get(reply.id);
      this.starting.delete(reply.id);
      pending?.reject(new Error(reply.error));
    } else {
      const done = this.running.get(reply.id);
      this.running.delete(reply.id);
      done?.({ code: reply.code, signal: reply.signal });
    }
  }

  private fail(err: Error): void {
    if (this.failed) return;
    this.failed = err;
    for (const pending of this.starting.values()) pending.reject(err);
    for (const done of this.running.values()) done(LOST);
    this.starting.clear();
    this.running.clear();
    this.onFailure(err);
  }
}
