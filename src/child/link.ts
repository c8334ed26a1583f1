import type { ByteSink } from "../writer.ts";

/**
 * The contract between a child's lifecycle (child.ts) and the ways of talking to it: stdio pipes (stdio.ts), a
 * TCP socket (tcp.ts). A transport starts the process and, once it runs and its `--delay` passed, attaches one
 * {@link Link}: the child's input as a byte sink and its output as a byte source. Everything that differs between
 * transports stays behind these types; the room never asks which one it has.
 */

/** How a child ended: an exit code, or the signal that killed it (both null: it could no longer be watched). */
export interface ExitInfo {
  code: number | null;
  signal: string | null;
}

/** A started process: its pid, and how it ended once it has. */
export interface StartedProcess {
  pid: number;
  exited: Promise<ExitInfo>;
  /**
   * Our ends of the pipes the starter made for the child's stdio (asked with {@link StdioPipes}): the stdin one
   * non-blocking (null when the child got none), the stdout and stderr ones to read. Ours to close.
   */
  pipes?: { stdin: number | null; stdout: number; stderr: number };
}

/** The child's stdio as pipes the starter makes right before it starts the child, and whether stdin is one. */
export interface StdioPipes {
  pipes: true;
  stdin: boolean;
}

/** The command could not be started; `message` is fit for a close reason. */
export class SpawnError extends Error {
  override name = "SpawnError";
}

/** A stream of the child's bytes: its stdout or stderr, or a socket to it. */
export interface Source {
  /**
   * Reads it to the end, each chunk to `onChunk` (which must not keep it past the call unless it copies it);
   * resolves at EOF, rejects when `onChunk` throws. Called only once the child runs, and only once.
   */
  read(onChunk: (chunk: Uint8Array) => void): Promise<void>;
}

/** The child's byte channel, once attached. */
export interface Link {
  /** Where the child's input is written (through the child's BoundedWriter). */
  readonly input: ByteSink;
  /** What the child sends the room. */
  readonly output: Source;
  /**
   * Whether the end of `output` means the child is done (a socket it hung up): it is then stopped. A pipe's EOF
   * does not: a child may close its stdout and still run.
   */
  readonly endStopsChild: boolean;
}

/** Starts children off the event loop (spawner.ts); unusable once its thread is gone. */
export interface ProcessStarter {
  readonly usable: boolean;
  spawn(request: {
    argv: string[];
    env: Record<string, string>;
    /** Descriptors the child gets as its stdin, stdout and stderr, or pipes made for it (then in `pipes`). */
    stdio: [number | "ignore", number, number] | StdioPipes;
  }): Promise<StartedProcess>;
}

/** What to run, whatever the transport. */
export interface Command {
  cmd: string;
  args: readonly string[];
  env: Record<string, string>;
  /** PATH used to find `cmd`: the server's, so `--passenv=` can still run `printenv`. */
  searchPath: string | undefined;
  /** Starts the child off the event loop; null starts it on this thread. */
  spawner: ProcessStarter | null;
}

/** A child on its way, as a transport started it. */
export interface Starting {
  /** Resolves once the child runs; rejects with a SpawnError when it could not be started. */
  process: Promise<StartedProcess>;
  /**
   * Output that only goes to the log, by stream: the child's stderr (which `--passstderr` also sends its clients),
   * and its stdout when that is not the link (`--tcp`). Null when the stream is the link itself (a terminal).
   */
  logs: { stderr: Source | null; stdout: Source | null };
  /**
   * Attaches the link; called once the child runs and `--delay` passed. Rejects with a message fit for the
   * clients' close reason when the child cannot be reached (a TCP child that never listens), or once `signal`
   * aborts (the child is being stopped).
   */
  attach(signal: AbortSignal): Promise<Link>;
}

/** One way of talking to a child: how it is started, and its link. */
export interface Transport {
  /** Starts `command`; throws SpawnError when it cannot even be tried (not found, no pipe to be had). */
  start(command: Command): Starting;
  /**
   * Whether ending the child's input is an end of input the child can see (EOF on a pipe, a socket shut down).
   * A stop gives such a child a grace period to end on it; one that cannot see it (a terminal) gets SIGTERM at
   * once, its grace period then between SIGTERM and SIGKILL only.
   */
  readonly inputEnds: boolean;
}
