import { accessSync, closeSync, constants, openSync, readSync, statSync } from "node:fs";
import { join, resolve } from "node:path";

/**
 * The command a room runs, before and after a start: where it is on PATH, what would keep it from starting
 * (checked once at start-up), and a failed start in plain words.
 */

/** Where each command was found on PATH: looked up once per server, not once per room. */
const commandPaths = new Map<string, string>();

/** Where `cmd` is: itself when it names a path, else its place on `searchPath`; null when it is not there. */
export function findCommand(cmd: string, searchPath: string | undefined): string | null {
  if (cmd.includes("/")) return cmd;
  const key = `${cmd}\0${searchPath ?? ""}`;
  let path = commandPaths.get(key) ?? null;
  if (path === null) {
    path = Bun.which(cmd, { PATH: searchPath ?? "" });
    if (path !== null) commandPaths.set(key, path);
  }
  return path;
}

/** Plain words for the errors an exec can end in; Bun's own say `ENOEXEC: unknown error, posix_spawn '...'`. */
const SPAWN_ERRORS: Readonly<Record<string, (cmd: string) => string>> = {
  ENOENT: () => "no such file, or the interpreter its #! line names is not installed",
  EACCES: (cmd) => `not executable (if it is a script, run chmod +x ${cmd})`,
  ENOEXEC: () => "not a program the system can run: a script needs a #! line first, like #!/bin/sh",
  ENOTDIR: () => "a part of its path is not a folder",
  ELOOP: () => "its path loops through symbolic links",
  ETXTBSY: () => "the file is being written by another process",
  E2BIG: () => "its arguments and environment are too long",
  ENOMEM: () => "out of memory",
  EMFILE: () => "the server has too many files open",
  ENFILE: () => "the system has too many files open",
  EAGAIN: () => "the system refuses more processes for now",
};

/** Why `cmd` could not be started, in words fit for the log and a close reason, from the error Bun reported. */
export function spawnFailure(cmd: string, message: string): string {
  const code = /^(E[A-Z0-9]+)\b/.exec(message)?.[1];
  const words = code === undefined ? undefined : SPAWN_ERRORS[code];
  return `cannot start ${cmd}: ${words === undefined ? message : words(cmd)}`;
}

/** A command that is not on PATH; a file of that name here is most likely what was meant. */
export function notFound(cmd: string, cwd: string = process.cwd()): string {
  if (!cmd.includes("/") && isFile(join(cwd, cmd)))
    return `command not found: ${cmd} (did you mean ./${cmd}? a file here is run only with a path)`;
  return `command not found: ${cmd}`;
}

/**
 * What would keep `cmd` from starting, checked once at start-up: not found, not executable, a script without a
 * `#!` line; null when it looks runnable. Each answer says what to do.
 */
export function commandProblem(
  cmd: string,
  searchPath: string | undefined,
  cwd = process.cwd(),
): string | null {
  const path = findCommand(cmd, searchPath);
  if (path === null) return notFound(cmd, cwd);
  const full = resolve(cwd, path);
  let stat: ReturnType<typeof statSync>;
  try {
    stat = statSync(full);
  } catch {
    return `${cmd} does not exist`;
  }
  if (stat?.isDirectory()) return `${cmd} is a folder, not a program`;
  try {
    accessSync(full, constants.X_OK);
  } catch {
    return `${cmd} is not executable: run chmod +x ${cmd}`;
  }
  return scriptLacksShebang(full) ? `${cmd} has no #! line: make its first line one, like #!/bin/sh` : null;
}

/** The first bytes of a file, for a look at its `#!` line; empty when it cannot be read. */
export function fileHead(path: string, bytes = 256): Uint8Array {
  let fd: number | undefined;
  try {
    fd = openSync(path, "r");
    const buf = new Uint8Array(bytes);
    return buf.subarray(0, readSync(fd, buf, 0, bytes, 0));
  } catch {
    return new Uint8Array(0);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Text without `#!`: the kernel refuses it (ENOEXEC). A binary (a NUL in its first bytes) is not a script. */
function scriptLacksShebang(path: string): boolean {
  const head = fileHead(path);
  if (head.length === 0 || head.includes(0)) return false;
  return !(head[0] === 0x23 && head[1] === 0x21);
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
