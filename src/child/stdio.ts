import type { FileSink, Subprocess } from "bun";
import { LineSplitter } from "./split.ts";

/** How a child ended: an exit code, or the signal that killed it. */
export interface ExitInfo {
  code: number | null;
  signal: string | null;
}

export interface ChildOptions {
  cmd: string;
  args: readonly string[];
  env: Record<string, string>;
  /** PATH used to find `cmd`; the server's, so `--passenv=` can still run `printenv`. */
  searchPath: string | undefined;
  /** Most bytes held for the child's stdin, and the longest output message. */
  maxBuffer: number;
  graceMs: number;
  /** One complete output message. */
  onMessage: (line: string) => void;
  /** Called after all messages of one stdout chunk were delivered: the room checks slow clients here. */
  onChunkEnd: () => void;
  /** Bytes read from stdout, and bytes written to stdin, for the metrics. */
  onRead: (bytes: number) => void;
  onWritten: (bytes: number) => void;
  onStderr: (line: string) => void;
  onOversize: (chars: number) => void;
}

/** The command could not be started; `message` is fit for a close reason. */
export class SpawnError extends Error {
  override name = "SpawnError";
}

/** How often to look whether a stopped child's process group is gone before the grace period ends. */
const GROUP_POLL_MS = 20;

/**
 * One child process over stdio: spawned in its own process group (so a stop reaches grandchildren), stdout
 * split into messages, stderr into log lines, stdin written through a bounded, coalescing writer.
 * `done` settles once the child exited, its group is gone and its stdout was read to the end.
 */
export class StdioChild {
  readonly pid: number;
  readonly done: Promise<ExitInfo>;
  private readonly proc: Subprocess<"pipe", "pipe", "pipe">;
  private readonly stdin: FileSink;
  /** Bytes handed to the sink and not yet known to be written. */
  private queued = 0;
  private flushScheduled = false;
  private flushing = false;
  private exited = false;
  private stopping: Promise<void> | null = null;

  constructor(private readonly opts: ChildOptions) {
    const path = opts.cmd.includes("/") ? opts.cmd : Bun.which(opts.cmd, { PATH: opts.searchPath ?? "" });
    if (!path) throw new SpawnError(`command not found: ${opts.cmd}`);
    try {
      this.proc = Bun.spawn([path, ...opts.args], {
        env: opts.env,
        stdin: "pipe",
        stdout: "pipe",
        stderr: "pipe",
        // Its own process group: SIGTERM/SIGKILL to -pid then reaches everything the child started.
        detached: true,
      });
    } catch (err) {
      throw new SpawnError(`cannot start ${opts.cmd}: ${(err as Error).message}`);
    }
    this.pid = this.proc.pid;
    this.stdin = this.proc.stdin;
    const stdout = this.readLines(this.proc.stdout, opts.onMessage, opts.onChunkEnd, opts.onRead);
    const stderr = this.readLines(
      this.proc.stderr,
      opts.onStderr,
      () => {},
      () => {},
    );
    this.done = this.proc.exited.then(async () => {
      this.exited = true;
      // Whatever the child left running in its group goes with it; only then do the pipes reach EOF.
      await this.endGroup(false);
      await Promise.all([stdout, stderr]);
      const signal = this.proc.signalCode;
      return { code: this.proc.exitCode, signal: signal === null ? null : String(signal) };
    });
  }

  /**
   * Queues one message for the child's stdin; flushed once per event-loop turn, so a burst of client messages
   * costs one write. Returns false, writing nothing, when the child already has `maxBuffer` bytes waiting:
   * a child that does not read its stdin never grows the server's memory.
   */
  write(data: string | Uint8Array, newline: boolean): boolean {
    if (this.exited) return false;
    const size = (typeof data === "string" ? data.length : data.byteLength) + (newline ? 1 : 0);
    if (this.queued + size > this.opts.maxBuffer) return false;
    this.queued += size;
    try {
      if (typeof data === "string") this.put(newline ? `${data}\n` : data, size);
      else {
        this.put(data, data.byteLength);
        if (newline) this.put("\n", 1);
      }
    } catch {
      return false; // the child closed its stdin; its exit ends the room
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flush);
    }
    return true;
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    if (this.flushing || this.exited || this.stopping !== null) return;
    const flushed = this.queued;
    let result: number | Promise<number> | undefined;
    try {
      result = this.stdin.flush();
    } catch {
      return;
    }
    // A number (or nothing, once stdin was closed) means everything was written.
    if (!(result instanceof Promise)) {
      this.queued = 0;
      return;
    }
    // The pipe is full: the child reads slower than clients write. Count the bytes as pending until it drains.
    this.flushing = true;
    result.then(
      () => {
        this.flushing = false;
        this.queued = Math.max(0, this.queued - flushed);
        if (this.queued > 0) this.flush();
      },
      () => {
        this.flushing = false;
      },
    );
  };

  /** Hands one chunk to the sink and counts its UTF-8 bytes (the sink's answer; `estimate` when it is pending). */
  private put(chunk: string | Uint8Array, estimate: number): void {
    const accepted: unknown = this.stdin.write(chunk);
    if (typeof accepted === "number") this.opts.onWritten(accepted);
    else {
      this.settle(accepted);
      this.opts.onWritten(estimate);
    }
  }

  /** A write the sink could not finish at once returns a promise; its rejection (EPIPE) must not go unhandled. */
  private settle(result: unknown): void {
    if (result instanceof Promise) result.catch(() => {});
  }

  /**
   * Stops the child: its stdin is closed first, so a child that ends on EOF does so with all its input read; one
   * still running after the grace period gets SIGTERM, and SIGKILL after another grace period, both sent to its
   * process group. Resolves when the child is gone and its output fully delivered.
   */
  stop(): Promise<ExitInfo> {
    try {
      // What clients sent last (and --leavemsg) still reaches the child before EOF.
      this.settle(this.stdin.flush());
      this.settle(this.stdin.end());
    } catch {
      // already closed
    }
    this.endGroup(true);
    return this.done;
  }

  /** Ends the child's process group: after an EOF grace period when asked to stop, at once when the child is gone. */
  private endGroup(eofFirst: boolean): Promise<void> {
    this.stopping ??= (async () => {
      if (eofFirst) await this.exitWithin(this.opts.graceMs);
      if (!this.signalGroup("SIGTERM")) return;
      const deadline = Date.now() + this.opts.graceMs;
      while (Date.now() < deadline) {
        await Bun.sleep(GROUP_POLL_MS);
        if (!this.signalGroup(0)) return;
      }
      this.signalGroup("SIGKILL");
    })();
    return this.stopping;
  }

  /** Resolves when the child exits or `ms` passed, whichever is first, leaving no timer behind. */
  private exitWithin(ms: number): Promise<void> {
    let timer: Timer | undefined;
    return Promise.race([
      this.proc.exited.then(() => {}),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, ms);
      }),
    ]).finally(() => clearTimeout(timer));
  }

  /** Sends `signal` to the child's process group; false when the group no longer exists. */
  private signalGroup(signal: NodeJS.Signals | 0): boolean {
    try {
      process.kill(-this.pid, signal);
      return true;
    } catch {
      return false;
    }
  }

  private async readLines(
    stream: ReadableStream<Uint8Array>,
    onLine: (line: string) => void,
    onChunkEnd: () => void,
    onRead: (bytes: number) => void,
  ): Promise<void> {
    const decoder = new TextDecoder();
    const splitter = new LineSplitter(this.opts.maxBuffer, onLine, this.opts.onOversize);
    for await (const chunk of stream) {
      onRead(chunk.byteLength);
      splitter.push(decoder.decode(chunk, { stream: true }));
      onChunkEnd();
    }
    splitter.push(decoder.decode());
    splitter.end();
    onChunkEnd();
  }
}
