import type { ByteSplitter } from "./bytesplit.ts";
import { killGroup } from "./libc.ts";
import type { OwnedFd } from "./pipes.ts";
import type { StartedProcess } from "./spawner.ts";
import { LineSplitter } from "./split.ts";
import { type ExitInfo, type Source, type StartOptions, type StdinEnd, startChild } from "./start.ts";
import { PipeWriter, type StdinSink } from "./stdin.ts";
import { connectWithRetry, type TcpLink } from "./tcp.ts";

export { type ExitInfo, SpawnError } from "./start.ts";

/** What a child runs and how it is started (start.ts), and what the room wants to hear of it. */
export interface ChildOptions extends Omit<StartOptions, "tcp"> {
  /** Most bytes held for the child's input (stdin or socket), and the longest output message. */
  maxBuffer: number;
  graceMs: number;
  /** Time between spawning and attaching (`--delay`): input is held, output not yet read. */
  delayMs: number;
  /** With `--tcp`: the port the child listens on (it gets it as `PORT`); null for stdio. */
  tcpPort: number | null;
  /** With `--tcp`: how long after the delay the child may take to start listening. */
  connectTimeoutMs: number;
  /** The child runs, with this pid. */
  onStarted: (pid: number) => void;
  /** The child could not be started on the spawner thread (say, not executable); `done` settles with null. */
  onStartFailed: (reason: string) => void;
  /** Cuts the child's output into messages (text lines, delimiters, chunks, gwsocket frames). */
  output: ByteSplitter;
  /** Called after the messages of one chunk of output were delivered: the room checks slow clients here. */
  onChunkEnd: () => void;
  /** A line of the child's stderr (and of its stdout with `--tcp`), for the log. */
  onLog: (line: string) => void;
  onOversizeLog: (chars: number) => void;
  /** Bytes read from the child's output, and bytes written to its input, for the metrics. */
  onRead: (bytes: number) => void;
  onWritten: (bytes: number) => void;
  /** The child could not be attached (a TCP child that never listened); it is being stopped. */
  onAttachFailed: (reason: string) => void;
}

/** How often to look whether a stopped child's process group is gone before the grace period ends. */
const GROUP_POLL_MS = 20;

/**
 * Children whose stdin was written this event-loop turn. One `setImmediate` flushes them all at the end of the
 * turn: a burst of client messages costs one write per child, and a hundred busy rooms one timer, not a hundred.
 */
const pendingFlush = new Set<Child>();
const utf8 = new TextEncoder();
let flushQueued = false;

function flushPending(): void {
  flushQueued = false;
  for (const child of pendingFlush) {
    pendingFlush.delete(child);
    child.flush();
  }
}

type Input =
  | { kind: "held"; chunks: (string | Uint8Array)[] }
  | { kind: "stdin"; sink: StdinSink; fd: OwnedFd | null }
  | { kind: "tcp"; link: TcpLink }
  | { kind: "closed" };

/**
 * One child process, spawned in its own process group (so a stop reaches grandchildren), talking over stdio or,
 * with `--tcp`, over a socket it listens on. Input is bounded by `maxBuffer` and flushed once per event-loop turn;
 * output goes through `options.output`. `done` settles once the child exited, its group is gone and its output
 * was read to the end.
 */
export class Child {
  /** The child's pid once it runs; null while it is being started. */
  pid: number | null = null;
  /** How the child ended, once it did and its output was read; null when it never started. */
  readonly done: Promise<ExitInfo | null>;
  /** The running process, or null when it could not be started. */
  private readonly started: Promise<StartedProcess | null>;
  private readonly stdinEnd: StdinEnd | null;
  private input: Input = { kind: "held", chunks: [] };
  /** Bytes accepted for the child and not yet known to be written. */
  private queued = 0;
  private flushing = false;
  /** Messages for the child's stdin written this turn, handed to its pipe as one write by {@link flush}. */
  private batch: (string | Uint8Array)[] = [];
  /** Whether {@link batch} holds bytes (binary mode), so it is joined as bytes rather than as one string. */
  private batchHasBytes = false;
  private exited = false;
  private stopping: Promise<void> | null = null;
  /** Ends a `--tcp` child's connection attempts; only TCP children have one (`abort()` is not free). */
  private abort: AbortController | null = null;

  /**
   * Starts the child: on the spawner thread when there is one (then a start that fails is reported through
   * `onStartFailed`), on this thread otherwise. Throws SpawnError when it cannot even be tried (command not on
   * PATH, no pipe to be had) or when starting it here fails.
   */
  constructor(private readonly opts: ChildOptions) {
    const tcp = opts.tcpPort !== null;
    const { process: spawned, stdout, stderr, stdinEnd } = startChild({ ...opts, tcp });
    this.stdinEnd = stdinEnd;
    this.started = spawned.then(
      (proc) => {
        this.pid = proc.pid;
        opts.onStarted(proc.pid);
        return proc;
      },
      (err: Error) => {
        this.exited = true;
        this.input = { kind: "closed" };
        opts.onStartFailed(err.message);
        return null;
      },
    );
    this.done = this.started.then(async (proc) => {
      if (!proc) return null;
      const readers = [this.readLog(stderr)];
      if (tcp) readers.push(this.readLog(stdout), this.attachTcp(opts.tcpPort as number));
      else readers.push(this.attachStdio(stdout));
      const exit = await proc.exited;
      this.exited = true;
      // Nothing more can reach it; its stdin is closed here if no stop() did it (our pipe end is a real fd).
      this.closeInput();
      // Whatever the child left running in its group goes with it; only then do the pipes reach EOF.
      await this.endGroup(false);
      // A reader that failed (a bug in a handler) must not turn the room's end into an unhandled rejection.
      for (const r of await Promise.allSettled(readers)) {
        if (r.status === "rejected")
          opts.onLog(`output reader failed: ${(r.reason as Error)?.message ?? r.reason}`);
      }
      return exit;
    });
  }

  /**
   * Queues one message for the child; flushed once per event-loop turn, so a burst of client messages costs one
   * write. Returns false, writing nothing, when the child already has `maxBuffer` bytes waiting: a child that does
   * not read never grows the server's memory.
   */
  write(data: string | Uint8Array, newline: boolean): boolean {
    const size = (typeof data === "string" ? data.length : data.byteLength) + (newline ? 1 : 0);
    const input = this.input;
    if (input.kind === "closed" || this.exited || this.queued + size > this.opts.maxBuffer) return false;
    if (input.kind === "tcp") {
      if (!input.link.write(data, newline)) return false;
      // `size` counts UTF-16 units for a string; the link encodes it anyway, so count its bytes here.
      this.opts.onWritten(typeof data === "string" ? Buffer.byteLength(data) + (newline ? 1 : 0) : size);
      return true;
    }
    this.queued += size;
    if (input.kind === "held") {
      input.chunks.push(data);
      if (newline) input.chunks.push("\n");
      return true;
    }
    // Joined and handed to the pipe once per turn: Bun's sink writes each write() at once, with a syscall each.
    const batch = this.batch;
    if (typeof data === "string") batch.push(newline ? `${data}\n` : data);
    else {
      this.batchHasBytes = true;
      batch.push(data);
      if (newline) batch.push("\n");
    }
    if (batch.length === 1) {
      pendingFlush.add(this);
      if (!flushQueued) {
        flushQueued = true;
        setImmediate(flushPending);
      }
    }
    return true;
  }

  /**
   * Stops the child: its input is closed first, so a child that ends on EOF does so with all its input read; one
   * still running after the grace period gets SIGTERM, and SIGKILL after another grace period, both sent to its
   * process group. Resolves when the child is gone and its output fully delivered.
   */
  stop(): Promise<ExitInfo | null> {
    this.closeInput();
    this.endGroup(true);
    return this.done;
  }

  private closeInput(): void {
    if (this.input.kind === "held" && this.stdinEnd) {
      // Not attached yet (still being started, or in its --delay): what clients sent still reaches the child,
      // then its EOF, at once rather than after the delay.
      if (this.pid === null && !this.exited) {
        void this.started.then(() => this.closeInput());
        return;
      }
      this.attachInput();
    }
    const input = this.input;
    this.input = { kind: "closed" };
    this.abort?.abort();
    if (input.kind === "stdin") {
      // What clients sent last (and --leavemsg) still reaches the child before EOF.
      this.endSink(input.sink, input.fd);
    } else if (input.kind === "tcp") {
      input.link.end();
    }
  }

  /** Flushes and ends the child's stdin; our pipe end is closed once the sink let go of it (Bun's closes itself). */
  private endSink(sink: StdinSink, fd: OwnedFd | null): void {
    let ended: unknown;
    try {
      this.putBatch(sink);
      this.settle(sink.flush());
      ended = sink.end();
    } catch {
      // already closed: the child is gone
    }
    const release = (): void => fd?.close();
    if (ended instanceof Promise) ended.then(release, release);
    else release();
  }

  private async attachStdio(stdout: Source): Promise<void> {
    await this.delay();
    this.attachInput();
    await this.readOutput(stdout);
  }

  /** Hands the held input to the child's stdin; from then on messages are written as they come. */
  private attachInput(): void {
    const held = this.input;
    const end = this.stdinEnd;
    // Not held any more: stopped before, or the child is gone. Its output is still read to the end.
    if (held.kind !== "held" || !end) return;
    this.switchInput(
      "fd" in end
        ? { kind: "stdin", sink: new PipeWriter(end.fd), fd: end.fd }
        : { kind: "stdin", sink: end.sink, fd: null },
      held.chunks,
    );
  }

  /** The child's input is attached: what was held for it meanwhile is written first, in order. */
  private switchInput(input: Input, held: readonly (string | Uint8Array)[]): void {
    this.input = input;
    this.queued = 0;
    for (const chunk of held) this.write(chunk, false);
  }

  private async attachTcp(port: number): Promise<void> {
    let link: TcpLink;
    this.abort = new AbortController();
    try {
      link = await connectWithRetry(port, {
        delayMs: this.opts.delayMs,
        deadlineMs: this.opts.delayMs + this.opts.connectTimeoutMs,
        signal: this.abort.signal,
        maxBuffer: this.opts.maxBuffer,
      });
    } catch (err) {
      if (this.exited || this.input.kind === "closed") return;
      this.opts.onAttachFailed((err as Error).message);
      this.stop();
      return;
    }
    const held = this.input;
    if (held.kind !== "held") {
      link.end();
      return;
    }
    this.switchInput({ kind: "tcp", link }, held.chunks);
    link.onData(this.deliver);
    await link.closed;
    this.endOutput();
    // The child hung up: like a child whose stdout closed, the room is over once it exits.
    this.stop();
  }

  private async delay(): Promise<void> {
    if (this.opts.delayMs > 0) await this.exitWithin(this.opts.delayMs);
  }

  /** Writes out what `write` queued; called once per turn by {@link flushPending}, and again when a pipe drains. */
  flush(): void {
    const input = this.input;
    if (this.flushing || this.exited || input.kind !== "stdin") return;
    const flushed = this.queued;
    let result: number | Promise<number> | undefined;
    try {
      this.putBatch(input.sink);
      result = input.sink.flush();
    } catch {
      return; // the child closed its stdin; its exit ends the room
    }
    // A number (or nothing, once stdin was closed) means everything was written.
    if (!(result instanceof Promise)) {
      this.queued = 0;
      return;
    }
    // The pipe is full: the child reads slower than clients write. Count the bytes as pending until it drains;
    // meanwhile new messages wait in the batch (bounded by maxBuffer through `queued`).
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
  }

  /** Hands the batch to the sink as one chunk. Throws when the child closed its stdin. */
  private putBatch(sink: StdinSink): void {
    const batch = this.batch;
    if (batch.length === 0) return;
    this.batch = [];
    if (!this.batchHasBytes) {
      const text = batch.length === 1 ? (batch[0] as string) : batch.join("");
      this.put(sink, text, text.length);
      return;
    }
    this.batchHasBytes = false;
    const parts = batch.map((part) => (typeof part === "string" ? utf8.encode(part) : part));
    const bytes = Buffer.concat(parts);
    this.put(sink, bytes, bytes.byteLength);
  }

  /** Hands one chunk to the sink and counts its UTF-8 bytes (the sink's answer; `estimate` when it is pending). */
  private put(sink: StdinSink, chunk: string | Uint8Array, estimate: number): void {
    const accepted: unknown = sink.write(chunk);
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

  /** Ends the child's process group: after an EOF grace period when asked to stop, at once when the child is gone. */
  private endGroup(eofFirst: boolean): Promise<void> {
    this.stopping ??= (async () => {
      // A child still being started is stopped once it runs; one that never started has nothing to end.
      if ((await this.started) === null) return;
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
  private exitWithin(ms: number): Promise<unknown> {
    let timer: Timer | undefined;
    return Promise.race([
      this.started.then((proc) => proc?.exited),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, ms);
      }),
    ]).finally(() => clearTimeout(timer));
  }

  /** Sends `signal` to the child's process group; false when the group no longer exists. */
  private signalGroup(signal: NodeJS.Signals | 0): boolean {
    return this.pid !== null && killGroup(this.pid, signal);
  }

  private async readOutput(source: Source): Promise<void> {
    await source.read(this.deliver);
    this.endOutput();
  }

  /** One chunk of output, from stdout or the TCP socket: counted, cut into messages, then the slow-client check. */
  private readonly deliver = (chunk: Uint8Array): void => {
    this.opts.onRead(chunk.byteLength);
    this.opts.output.push(chunk);
    this.opts.onChunkEnd();
  };

  /** The output ended: a last unterminated message goes out. */
  private endOutput(): void {
    this.opts.output.end();
    this.opts.onChunkEnd();
  }

  private async readLog(source: Source): Promise<void> {
    const decoder = new TextDecoder();
    const lines = new LineSplitter(this.opts.maxBuffer, this.opts.onLog, this.opts.onOversizeLog);
    await source.read((chunk) => lines.push(decoder.decode(chunk, { stream: true })));
    lines.push(decoder.decode());
    lines.end();
  }
}
