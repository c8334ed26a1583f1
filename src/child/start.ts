import type { FileSink, Subprocess } from "bun";
import { type ChildPipes, closeChildEnds, closePipes, type OwnedFd, openStdio } from "./pipes.ts";
import { type Spawner, SpawnerGone, type StartedProcess } from "./spawner.ts";

/** How a child ended: an exit code, or the signal that killed it (both null: it could no longer be watched). */
export interface ExitInfo {
  code: number | null;
  signal: string | null;
}

/** The command could not be started; `message` is fit for a close reason. */
export class SpawnError extends Error {
  override name = "SpawnError";
}

export interface StartOptions {
  cmd: string;
  args: readonly string[];
  env: Record<string, string>;
  /** PATH used to find `cmd`: the server's, so `--passenv=` can still run `printenv`. */
  searchPath: string | undefined;
  /** A `--tcp` child: its stdin is not used, its stdout goes to the log. */
  tcp: boolean;
  /** Plain OS pipes for stdio where libc is reachable (see pipes.ts); false keeps Bun's own. */
  osPipes: boolean;
  /** Starts the child off the event loop (with OS pipes only); null starts it on this thread. */
  spawner: Spawner | null;
}

/** The child's stdout or stderr. */
export interface Source {
  /**
   * Reads it to the end, each chunk to `onChunk` (which must not keep it past the call unless it copies it);
   * resolves at EOF, rejects when `onChunk` throws. Called only once the child runs, and only once.
   */
  read(onChunk: (chunk: Uint8Array) => void): Promise<void>;
}

/** The child's stdin before it is written to: our end of its pipe, or Bun's sink. */
export type StdinEnd = { fd: OwnedFd } | { sink: FileSink };

/** A child on its way: the process once it runs, and our ends of its stdio. */
export interface Starting {
  /**
   * Resolves once the child runs (its ends of the pipes are closed here then); rejects with a SpawnError when it
   * could not be started, every pipe closed.
   */
  process: Promise<StartedProcess>;
  stdout: Source;
  stderr: Source;
  /** Null for a `--tcp` child. */
  stdinEnd: StdinEnd | null;
}

/** Where each command was found on PATH: looked up once per server, not once per room. */
const commandPaths = new Map<string, string>();

function findCommand(cmd: string, searchPath: string | undefined): string | null {
  if (cmd.includes("/")) return cmd;
  const key = `${cmd}\0${searchPath ?? ""}`;
  let path = commandPaths.get(key) ?? null;
  if (path === null) {
    path = Bun.which(cmd, { PATH: searchPath ?? "" });
    if (path !== null) commandPaths.set(key, path);
  }
  return path;
}

/** Our end of a pipe, read through Bun's stream of it; Bun.file(fd) never closes the descriptor, so this does. */
function pipeSource(end: OwnedFd): Source {
  return {
    read: async (onChunk) => {
      try {
        await streamSource(Bun.file(end.fd).stream()).read(onChunk);
      } finally {
        end.close();
      }
    },
  };
}

/** A ReadableStream read to its end: of our pipe (pipeSource), or of Bun's own (the fallback). */
function streamSource(stream: ReadableStream<Uint8Array>): Source {
  return {
    read: async (onChunk) => {
      const reader = stream.getReader();
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          onChunk(value);
        }
      } finally {
        reader.releaseLock();
      }
    },
  };
}

/**
 * Bun.spawn on this thread: when there is no spawner thread (no OS pipes here, or the thread is gone).
 * Throws SpawnError.
 */
function spawnHere(
  opts: StartOptions,
  argv: string[],
  fds: ["pipe" | "ignore" | number, "pipe" | number, "pipe" | number],
): StartedProcess & { subprocess: Subprocess } {
  let subprocess: Subprocess;
  try {
    subprocess = Bun.spawn(argv, {
      env: opts.env,
      stdio: fds,
      // Its own process group: SIGTERM/SIGKILL to -pid then reaches everything the child started.
      detached: true,
    });
  } catch (err) {
    throw new SpawnError(`cannot start ${opts.cmd}: ${(err as Error).message}`);
  }
  const exited = subprocess.exited.then(() => {
    const signal = subprocess.signalCode;
    return { code: subprocess.exitCode, signal: signal === null ? null : String(signal) };
  });
  return { pid: subprocess.pid, exited, subprocess };
}

/**
 * Starts a child in its own process group: with OS pipes on the spawner thread when there is one, otherwise on
 * this thread. Throws SpawnError when it cannot even be tried (command not on PATH, no pipe to be had) or when
 * starting it on this thread fails; a start that fails on the spawner thread rejects `process` instead.
 */
export function startChild(opts: StartOptions): Starting {
  const path = findCommand(opts.cmd, opts.searchPath);
  if (!path) throw new SpawnError(`command not found: ${opts.cmd}`);
  const argv = [path, ...opts.args];
  let stdio: ChildPipes | null;
  try {
    stdio = opts.osPipes ? openStdio(!opts.tcp) : null;
  } catch (err) {
    throw new SpawnError(`cannot start ${opts.cmd}: ${(err as Error).message}`);
  }
  if (!stdio) {
    const proc = spawnHere(opts, argv, [opts.tcp ? "ignore" : "pipe", "pipe", "pipe"]);
    return {
      process: Promise.resolve(proc),
      stdout: streamSource(proc.subprocess.stdout as ReadableStream<Uint8Array>),
      stderr: streamSource(proc.subprocess.stderr as ReadableStream<Uint8Array>),
      stdinEnd: opts.tcp ? null : { sink: proc.subprocess.stdin as FileSink },
    };
  }
  const pipes = stdio;
  const fds: [number | "ignore", number, number] = [
    pipes.stdin?.read.fd ?? "ignore",
    pipes.stdout.write.fd,
    pipes.stderr.write.fd,
  ];
  const here = () => spawnHere(opts, argv, fds);
  let spawning: Promise<StartedProcess>;
  if (opts.spawner?.usable) {
    spawning = opts.spawner
      .spawn({ argv, env: opts.env, stdio: fds })
      .catch((err) => (err instanceof SpawnerGone ? here() : Promise.reject(err)));
  } else {
    // On this thread a failure is thrown at once, like a command that is not found.
    try {
      spawning = Promise.resolve(here());
    } catch (err) {
      closePipes(pipes.stdin, pipes.stdout, pipes.stderr);
      throw err;
    }
  }
  return {
    process: spawning.then(
      (proc) => {
        closeChildEnds(pipes);
        return proc;
      },
      (err: Error) => {
        closePipes(pipes.stdin, pipes.stdout, pipes.stderr);
        throw err instanceof SpawnError ? err : new SpawnError(`cannot start ${opts.cmd}: ${err.message}`);
      },
    ),
    stdout: pipeSource(pipes.stdout.read),
    stderr: pipeSource(pipes.stderr.read),
    stdinEnd: pipes.stdin ? { fd: pipes.stdin.write } : null,
  };
}
