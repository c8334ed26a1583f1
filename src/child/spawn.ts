import type { FileSink, Subprocess } from "bun";
import { type ByteSink, fileSink } from "../writer.ts";
import { findCommand, notFound, spawnFailure } from "./command.ts";
import type { Command, ProcessStarter, Source, StartedProcess } from "./link.ts";
import { SpawnError } from "./link.ts";
import {
  type ChildPipes,
  closeChildEnds,
  closePipes,
  OwnedFd,
  openStdio,
  PipeSink,
  pipesAvailable,
} from "./pipes.ts";
import { SpawnerGone, startedByBun } from "./spawner.ts";

/** A process started with its stdio: what the stdio and TCP transports build on. */
export interface Spawned {
  /**
   * Resolves once the child runs (its ends of the pipes are closed here then); rejects with a SpawnError when it
   * could not be started, every pipe closed.
   */
  process: Promise<StartedProcess>;
  stdout: Source;
  stderr: Source;
  /**
   * The child's stdin as a sink, made when it is first needed, once `process` resolved (its pipe may not exist
   * before); null when it was not asked for.
   */
  stdin: (() => ByteSink) | null;
}

/**
 * Our end of a pipe, read through Bun's stream of it. The stream's reader reads a duplicate of the descriptor,
 * which Bun closes at the end; ours is closed as soon as the first read is under way, so that a room holds one
 * descriptor per pipe end rather than two (with thousands of rooms, the open-files limit is what runs out first).
 */
function pipeSource(end: OwnedFd): Source {
  return {
    read: async (onChunk) => {
      try {
        const reader = Bun.file(end.fd).stream().getReader();
        let next = reader.read();
        end.close();
        try {
          for (;;) {
            const { value, done } = await next;
            if (done) return;
            onChunk(value);
            next = reader.read();
          }
        } finally {
          reader.releaseLock();
        }
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
  command: Command,
  argv: string[],
  fds: ["pipe" | "ignore" | number, "pipe" | number, "pipe" | number],
): StartedProcess & { subprocess: Subprocess } {
  let subprocess: Subprocess;
  try {
    subprocess = Bun.spawn(argv, {
      env: command.env,
      stdio: fds,
      // Its own process group: SIGTERM/SIGKILL to -pid then reaches everything the child started.
      detached: true,
    });
  } catch (err) {
    throw new SpawnError(spawnFailure(command.cmd, (err as Error).message));
  }
  const exited = subprocess.exited.then(() => {
    const signal = subprocess.signalCode;
    return { code: subprocess.exitCode, signal: signal === null ? null : String(signal) };
  });
  startedByBun(subprocess.pid, exited);
  return { pid: subprocess.pid, exited, subprocess };
}

/**
 * Starts a child in its own process group with its stdout and stderr on pipes, and its stdin on one too when
 * `withStdin` (else it reads nothing): plain OS pipes where libc can be loaded and `osPipes` allows, made and the
 * child started on the spawner thread when there is one; Bun's own pipes on this thread otherwise. Throws
 * SpawnError when it cannot even be tried (command not on PATH, no pipe to be had) or when starting it on this
 * thread fails; a start that fails on the spawner thread rejects `process` instead.
 */
export function spawnWithPipes(command: Command, withStdin: boolean, osPipes: boolean): Spawned {
  const path = findCommand(command.cmd, command.searchPath);
  if (!path) throw new SpawnError(notFound(command.cmd));
  const argv = [path, ...command.args];
  if (osPipes && pipesAvailable() && command.spawner?.usable)
    return spawnOnThread(command, argv, withStdin, command.spawner);
  let stdio: ChildPipes | null;
  try {
    stdio = osPipes ? openStdio(withStdin) : null;
  } catch (err) {
    throw new SpawnError(`cannot start ${command.cmd}: ${(err as Error).message}`);
  }
  if (!stdio) {
    const proc = spawnHere(command, argv, [withStdin ? "pipe" : "ignore", "pipe", "pipe"]);
    return {
      process: Promise.resolve(proc),
      stdout: streamSource(proc.subprocess.stdout as ReadableStream<Uint8Array>),
      stderr: streamSource(proc.subprocess.stderr as ReadableStream<Uint8Array>),
      stdin: withStdin ? () => fileSink(proc.subprocess.stdin as FileSink) : null,
    };
  }
  const ends = ourEnds(stdio);
  return pipedSpawn(Promise.resolve(startOnPipes(command, argv, stdio)), () => ends, withStdin);
}

/** Our ends of a child's pipes: its stdin's (null when it has none), its stdout's and stderr's. */
interface Ends {
  stdin: OwnedFd | null;
  stdout: OwnedFd;
  stderr: OwnedFd;
}

function ourEnds(pipes: ChildPipes): Ends {
  return { stdin: pipes.stdin?.write ?? null, stdout: pipes.stdout.read, stderr: pipes.stderr.read };
}

/** Starts the child on this thread on `pipes`, made here; throws SpawnError, every pipe closed. */
function startOnPipes(command: Command, argv: string[], pipes: ChildPipes): StartedProcess {
  let proc: StartedProcess;
  try {
    proc = spawnHere(command, argv, [
      pipes.stdin?.read.fd ?? "ignore",
      pipes.stdout.write.fd,
      pipes.stderr.write.fd,
    ]);
  } catch (err) {
    closePipes(pipes.stdin, pipes.stdout, pipes.stderr);
    throw err;
  }
  // The child has its ends: ours must not keep them open, or its stdin never sees EOF.
  closeChildEnds(pipes);
  return proc;
}

/**
 * A child the spawner thread starts on pipes it makes right before: a room still waiting in the thread's queue
 * holds no descriptor (thousands of rooms opening at once would otherwise hold six each while they wait, and
 * pass the open-files limit). Should the thread be gone meanwhile, the child starts here on pipes made here.
 */
function spawnOnThread(
  command: Command,
  argv: string[],
  withStdin: boolean,
  spawner: ProcessStarter,
): Spawned {
  let ends: Ends | null = null;
  const here = (): StartedProcess => {
    let pipes: ChildPipes;
    try {
      pipes = openStdio(withStdin) as ChildPipes;
    } catch (err) {
      throw new SpawnError(`cannot start ${command.cmd}: ${(err as Error).message}`);
    }
    const proc = startOnPipes(command, argv, pipes);
    ends = ourEnds(pipes);
    return proc;
  };
  const process = spawner.spawn({ argv, env: command.env, stdio: { pipes: true, stdin: withStdin } }).then(
    (proc) => {
      const fds = proc.pipes;
      if (fds === undefined) throw new SpawnError(`cannot start ${command.cmd}: the spawner made no pipes`);
      ends = {
        stdin: fds.stdin === null ? null : new OwnedFd(fds.stdin),
        stdout: new OwnedFd(fds.stdout),
        stderr: new OwnedFd(fds.stderr),
      };
      return proc;
    },
    (err: Error) => {
      if (err instanceof SpawnerGone) return here();
      throw err instanceof SpawnError ? err : new SpawnError(spawnFailure(command.cmd, err.message));
    },
  );
  return pipedSpawn(process, () => ends, withStdin);
}

/** A child on OS pipes whose ends `ends` gives once it runs (the only time they are used: see Source). */
function pipedSpawn(process: Promise<StartedProcess>, ends: () => Ends | null, withStdin: boolean): Spawned {
  const end = (pick: (e: Ends) => OwnedFd | null): OwnedFd => {
    const got = ends();
    const fd = got === null ? null : pick(got);
    if (fd === null) throw new Error("a child's pipe was used before the child ran");
    return fd;
  };
  return {
    process,
    stdout: { read: async (onChunk) => pipeSource(end((e) => e.stdout)).read(onChunk) },
    stderr: { read: async (onChunk) => pipeSource(end((e) => e.stderr)).read(onChunk) },
    stdin: withStdin ? () => new PipeSink(end((e) => e.stdin)) : null,
  };
}
