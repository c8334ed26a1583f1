import { LineSplitter } from "../framing/split.ts";
import { BoundedWriter } from "../writer.ts";
import { killGroup } from "./libc.ts";
import type { Command, ExitInfo, Link, Source, StartedProcess, Starting, Transport } from "./link.ts";

export { type ExitInfo, SpawnError } from "./link.ts";

/** What the owner of a child (its room) hears of it. */
export interface ChildEvents {
  /** The child runs, with this pid. */
  started(pid: number): void;
  /** The child could not be started on the spawner thread (say, not executable); `done` settles with null. */
  startFailed(reason: string): void;
  /** The child could not be attached (a TCP child that never listened); it is being stopped. */
  attachFailed(reason: string): void;
  /** One chunk of the child's output, as its link read it. */
  output(chunk: Uint8Array): void;
  /** The child's output ended: a last unterminated message may be delivered now. */
  outputEnded(): void;
  /** A line for the log: of the child's stderr (`stderr` true), or of its stdout with `--tcp`. */
  logLine(line: string, stderr: boolean): void;
  /** A log line longer than the buffer was dropped. */
  logOversize(chars: number): void;
  /** Bytes the child's input took, for the metrics. */
  written(bytes: number): void;
}

export interface ChildOptions {
  /** Most bytes held for the child's input, whatever the transport, and the longest log line. */
  maxBuffer: number;
  /** Time between closing the child's input and SIGTERM, and between SIGTERM and SIGKILL. */
  graceMs: number;
  /** Time between spawning and attaching (`--delay`): input is held, output not yet read. */
  delayMs: number;
}

/** How a child ended, in words that follow its command in a log line or a close reason. */
export function describeExit(exit: ExitInfo): string {
  if (exit.signal !== null) return `was killed by ${exit.signal}`;
  return exit.code === null ? "can no longer be watched" : `exited with code ${exit.code}`;
}

/** How often to look whether a stopped child's process group is gone before the grace period ends. */
const GROUP_POLL_MS = 20;

/**
 * One child process's life: started by a transport in its own process group (so a stop reaches grandchildren),
 * attached after `--delay`, stopped by closing its input, then SIGTERM, then SIGKILL. Its input goes through one
 * bounded writer; its output and log lines go to {@link ChildEvents}. `done` settles once the child exited, its
 * group is gone and its output was read to the end.
 */
export class Child {
  /** The child's pid once it runs; null while it is being started. */
  pid: number | null = null;
  /** How the child ended, once it did and its output was read; null when it never started. */
  readonly done: Promise<ExitInfo | null>;
  /** The running process, or null when it could not be started. */
  private readonly started: Promise<StartedProcess | null>;
  private readonly input: BoundedWriter;
  private exited = false;
  /** Whether ending the input is something the child sees (not on a terminal): see Transport.inputEnds. */
  private readonly inputEnds: boolean;
  private stopping: Promise<void> | null = null;
  /** Aborted by a stop: a link still being attached (a TCP connect) is given up. */
  private readonly abort = new AbortController();

  /**
   * Starts `command` through `transport`. Throws SpawnError when it cannot even be tried (command not on PATH,
   * no pipe to be had) or when starting it on this thread fails.
   */
  constructor(
    command: Command,
    transport: Transport,
    private readonly opts: ChildOptions,
    private readonly events: ChildEvents,
  ) {
    const starting = transport.start(command);
    this.inputEnds = transport.inputEnds;
    this.input = new BoundedWriter(opts.maxBuffer, (bytes) => events.written(bytes));
    this.started = starting.process.then(
      (proc) => {
        this.pid = proc.pid;
        events.started(proc.pid);
        return proc;
      },
      (err: Error) => {
        this.exited = true;
        this.input.close();
        events.startFailed(err.message);
        return null;
      },
    );
    this.done = this.started.then((proc) => proc && this.live(proc, starting));
  }

  /**
   * Queues one message for the child, exactly the bytes given; returns false, writing nothing, when the child's
   * input was closed or already holds `maxBuffer` bytes: a child that does not read never grows the server's
   * memory.
   */
  write(data: string | Uint8Array): boolean {
    return !this.exited && this.input.write(data);
  }

  /**
   * Stops the child: its input is closed first, so a child that ends on EOF does so with all its input read; one
   * still running after the grace period gets SIGTERM, and SIGKILL after another grace period, both sent to its
   * process group. Resolves when the child is gone and its output fully delivered.
   */
  stop(): Promise<ExitInfo | null> {
    this.input.end();
    this.abort.abort(new Error("the child is being stopped"));
    this.endGroup(this.inputEnds);
    return this.done;
  }

  /** From the start to the end of a running child. */
  private async live(proc: StartedProcess, starting: Starting): Promise<ExitInfo> {
    const { stderr, stdout } = starting.logs;
    const readers: Promise<void>[] = [];
    if (stdout !== null) readers.push(this.readLog(stdout, false));
    if (stderr !== null) readers.push(this.readLog(stderr, true));
    readers.push(this.attach(starting));
    const exit = await proc.exited;
    this.exited = true;
    // Nothing more can reach it; its input is ended here if no stop() did it.
    this.input.end();
    // Whatever the child left running in its group goes with it; only then do the pipes reach EOF.
    await this.endGroup(false);
    // A reader that failed (a bug in a handler) must not turn the room's end into an unhandled rejection.
    for (const r of await Promise.allSettled(readers)) {
      if (r.status === "rejected")
        this.events.logLine(`output reader failed: ${(r.reason as Error)?.message ?? r.reason}`, false);
    }
    return exit;
  }

  /** Waits for `--delay` (cut short by a stop), attaches the link, and reads the child's output to its end. */
  private async attach(starting: Starting): Promise<void> {
    if (this.opts.delayMs > 0 && !this.abort.signal.aborted) {
      await this.exitWithin(this.opts.delayMs, this.abort.signal);
    }
    let link: Link;
    try {
      link = await starting.attach(this.abort.signal);
    } catch (err) {
      if (this.exited || this.abort.signal.aborted) return;
      this.events.attachFailed((err as Error).message);
      this.stop();
      return;
    }
    this.input.attach(link.input);
    await link.output.read((chunk) => this.events.output(chunk));
    this.events.outputEnded();
    // A socket the child hung up: like a child whose stdout closed, the room is over once it exits.
    if (link.endStopsChild) this.stop();
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

  /** Resolves when the child exits, `ms` passed or `signal` aborts, whichever is first, leaving no timer behind. */
  private exitWithin(ms: number, signal?: AbortSignal): Promise<unknown> {
    let timer: Timer | undefined;
    let onAbort: (() => void) | undefined;
    return Promise.race([
      this.started.then((proc) => proc?.exited),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, ms);
        onAbort = resolve;
        signal?.addEventListener("abort", onAbort, { once: true });
      }),
    ]).finally(() => {
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener("abort", onAbort);
    });
  }

  /** Sends `signal` to the child's process group; false when the group no longer exists. */
  private signalGroup(signal: NodeJS.Signals | 0): boolean {
    return this.pid !== null && killGroup(this.pid, signal);
  }

  private async readLog(source: Source, stderr: boolean): Promise<void> {
    const decoder = new TextDecoder();
    const lines = new LineSplitter(
      this.opts.maxBuffer,
      (line) => this.events.logLine(line, stderr),
      (chars) => this.events.logOversize(chars),
    );
    await source.read((chunk) => lines.push(decoder.decode(chunk, { stream: true })));
    lines.push(decoder.decode());
    lines.end();
  }
}
