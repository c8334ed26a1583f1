import type { Terminal } from "bun";
import type { ByteSink } from "../writer.ts";
import { findCommand, notFound, spawnFailure } from "./command.ts";
import { type Link, SpawnError, type StartedProcess, type Transport } from "./link.ts";
import { PushedSource } from "./pushed.ts";
import { startedByBun } from "./spawner.ts";

/**
 * `--pty`: the child runs on a pseudo-terminal, so its C stdio (and Python, Ruby, Perl on top of it) sees a
 * terminal and flushes each line, as on a console, with no change to the script. Its stdin, stdout and stderr are
 * all the terminal: what it prints on stderr reaches the clients too, in the order printed.
 *
 * Raw mode, so the terminal changes nothing on the way: no echo of input, no `\n` → `\r\n` on output, no signal
 * or line-editing characters (^C, ^D, ^S are plain bytes), no `\r` → `\n` on input. A full-screen program that
 * sets its own mode is carried byte for byte.
 *
 * Bun's inline terminal (`Bun.spawn(argv, { terminal: {...} })`) is used rather than a `Bun.Terminal` made
 * beforehand: only the inline one makes the child a session leader with the terminal as its controlling terminal
 * (so `/dev/tty` works), and only for it does Bun close its copy of the terminal's other end, so the output ends
 * (EOF) once the child and everything it started are gone (Bun 1.4.5; oven-sh/bun#33237). The price: the mode is
 * set just after the child was started, so a child that prints within microseconds of its start could have that
 * first output translated (`\r\n`, which text framing strips anyway). Spawned on this thread: the spawner thread
 * cannot hand a terminal back.
 */

/** The terminal's size, `--ptysize` (default 80x24). */
export interface PtySize {
  cols: number;
  rows: number;
}

/**
 * Bun's terminal writer buffers a write smaller than this and reports `drain` once it is out; a larger write that
 * the kernel takes at once reports nothing, and `write()` always returns the whole length, however much it had to
 * keep. So the sink hands it at most this much at a time and waits for `drain`: Bun never holds more than one
 * slice, and a child that does not read stops the flow (its input then waits, bounded, in the child's writer).
 */
const MAX_SLICE = 4095;

/** termios `OPOST` (output processing, such as `\n` → `\r\n`): the same bit on Linux and macOS. */
const OPOST = 0o1;

/** Where Bun has no pseudo-terminal to offer, why; null where `--pty` works. */
export function ptyUnsupported(platform: string = process.platform): string | null {
  if (platform === "win32")
    return "--pty needs a POSIX system (Linux, macOS): Windows has no pseudo-terminal here";
  if (typeof Bun.Terminal !== "function") return "--pty needs a Bun with Bun.Terminal (1.3.5 or later)";
  return null;
}

/** The `--pty` transport: the child on a terminal of `size`, which is both its input and its output. */
export function ptyTransport(size: PtySize): Transport {
  return {
    // A terminal has no end of input a waiting read sees (see PtyLink), so a stop sends SIGTERM at once.
    inputEnds: false,
    start(command) {
      const path = findCommand(command.cmd, command.searchPath);
      if (!path) throw new SpawnError(notFound(command.cmd));
      const link = new PtyLink();
      let subprocess: ReturnType<typeof Bun.spawn>;
      try {
        subprocess = Bun.spawn([path, ...command.args], {
          // What a terminal program needs to know the terminal it draws on; not the server's own TERM.
          env: { TERM: "xterm-256color", ...command.env },
          terminal: {
            cols: size.cols,
            rows: size.rows,
            data: (_t, chunk) => link.received(chunk),
            drain: () => link.drained(),
            exit: () => link.ended(),
          },
        });
      } catch (err) {
        throw new SpawnError(spawnFailure(command.cmd, (err as Error).message));
      }
      const terminal = subprocess.terminal as Terminal;
      link.open(terminal);
      const exited = subprocess.exited.then(() => {
        const signal = subprocess.signalCode;
        return { code: subprocess.exitCode, signal: signal === null ? null : String(signal) };
      });
      startedByBun(subprocess.pid, exited);
      // The inline terminal made the child a session leader, so its pid is its process group's too.
      const proc: StartedProcess = { pid: subprocess.pid, exited };
      return {
        process: Promise.resolve(proc),
        logs: { stderr: null, stdout: null },
        attach: async () => link,
      };
    },
  };
}

/**
 * The terminal as a link: its input a sink over `terminal.write` in slices, its output what the terminal's data
 * callback hands over. The output ends when Bun reports the terminal's end (every holder of the child's side is
 * gone); the terminal is closed then.
 */
class PtyLink implements Link {
  readonly endStopsChild = false;
  readonly input: ByteSink;
  /** Bun reads the terminal from the start, unlike a pipe: what comes during `--delay` waits here, bounded. */
  readonly output: PushedSource;
  private terminal: Terminal | null = null;
  private finished = false;
  private settle: () => void = () => {};
  private readonly done = new Promise<void>((resolve) => {
    this.settle = resolve;
  });
  /** Bytes handed to Bun and not reported out yet (one slice at most). */
  private held = 0;
  private ending = false;

  constructor() {
    const link = this;
    this.input = {
      get pending() {
        return link.held;
      },
      ondrain: null,
      write: (chunk, size) => this.write(chunk, size),
      end: () => this.endInput(),
    };
    this.output = new PushedSource(this.done);
  }

  /** Puts the child's terminal in raw mode. */
  open(terminal: Terminal): void {
    this.terminal = terminal;
    // setRawMode clears ECHO, ICANON, ISIG, IEXTEN and the input translations (ICRNL, IXON); OPOST stays.
    terminal.setRawMode(true);
    terminal.outputFlags &= ~OPOST;
  }

  received(chunk: Uint8Array): void {
    this.output.push(chunk);
  }

  drained(): void {
    if (this.held === 0) return;
    this.held = 0;
    if (!this.ending) this.input.ondrain?.();
  }

  /** Every holder of the child's side closed it: no more output. */
  ended(): void {
    if (this.finished) return;
    this.finished = true;
    this.terminal?.close();
    this.settle();
  }

  private write(chunk: string | Uint8Array, size: number): number {
    const terminal = this.terminal;
    if (terminal === null || terminal.closed || this.finished || this.ending) return -1;
    if (this.held > 0) return 0;
    let slice: string | Uint8Array = chunk;
    if (size > MAX_SLICE) {
      slice = (typeof chunk === "string" ? Buffer.from(chunk) : chunk).subarray(0, MAX_SLICE);
    }
    try {
      terminal.write(slice);
    } catch {
      return -1; // closed under us: the child is gone
    }
    this.held = Math.min(size, MAX_SLICE);
    return this.held;
  }

  /**
   * "Closing the child's stdin" on a terminal: there is no descriptor to close, and no end of input a reading
   * child would see. Closing the terminal hangs it up (SIGHUP, and the child's last output is lost with it). ^D
   * after switching back to canonical mode reaches only a read that starts after the switch: one already waiting
   * in raw mode wants at least one byte, and an end of file gives none (Linux n_tty). So ending the input only
   * stops further writes; the stop goes on to SIGTERM after the grace period, and the terminal ends once the
   * child and its group are gone.
   */
  private endInput(): void {
    this.ending = true;
  }
}
