import { basename } from "node:path";
import { commandProblem, fileHead, findCommand } from "./child/command.ts";

/**
 * What the server says at start-up beyond "listening": where to point a browser or a client, what is wrong with
 * the command (it still starts: a command that cannot run is found per room, SPEC section 2), and when the
 * command will most likely hold its output back. Pure but for a look at the command's file.
 */

/**
 * The URLs to open: the websocket one always, the page one when something is served at `/` (`--staticdir`, the
 * dev console). A wildcard bind is reached as localhost from this machine.
 */
export function startupUrls(hostname: string, port: number, servesRoot: boolean): string[] {
  const wildcard = hostname === "" || hostname === "0.0.0.0" || hostname === "::" || hostname === "[::]";
  const host = wildcard ? "localhost" : hostname.includes(":") ? `[${hostname}]` : hostname;
  const urls = [`ws://${host}:${port}/<room>`];
  if (servesRoot) urls.push(`http://${host}:${port}/`);
  return urls;
}

/**
 * Interpreters that hold their output back when it goes to a pipe rather than a terminal, so clients see nothing
 * until a buffer fills or the script exits, and how each is told not to. Node, Bun, Deno and PHP's CLI write out
 * each `console.log`/`echo` at once, so they are not here; nor is a shell (each command is its own process).
 */
const BUFFERING: readonly { name: RegExp; unbuffered: (args: readonly string[]) => boolean; fix: string }[] =
  [
    {
      name: /^python[0-9.]*$/,
      // `-u`, alone or among other short switches (`-Bu`), before the script's name.
      unbuffered: (args) => optionsBeforeScript(args).some((a) => /^-[A-Za-z]*u/.test(a)),
      fix: "python3 -u (write it `-- -u script.py`), print(..., flush=True) or PYTHONUNBUFFERED=1 with --passenv",
    },
    {
      name: /^ruby[0-9.]*$/,
      unbuffered: () => false,
      fix: "$stdout.sync = true at the top of the script",
    },
    {
      name: /^perl[0-9.]*$/,
      unbuffered: () => false,
      fix: "$| = 1; at the top of the script",
    },
  ];

/** The switches given to an interpreter before its script (or `-c`/`-e` code): the first word not a switch ends them. */
function optionsBeforeScript(args: readonly string[]): string[] {
  const end = args.findIndex((a) => !a.startsWith("-") || a === "-c" || a === "-e" || a === "-m");
  return [...(end === -1 ? args : args.slice(0, end + 1))];
}

/**
 * The interpreter a script names on its `#!` line, with the switches given there: `#!/usr/bin/env python3 -u`
 * gives `python3` and `["-u"]`. Null when the file has no `#!` line.
 */
export function shebang(head: Uint8Array): { interpreter: string; args: string[] } | null {
  if (head[0] !== 0x23 || head[1] !== 0x21) return null;
  const text = new TextDecoder().decode(head);
  const line = text.slice(2, (text.indexOf("\n") + 1 || text.length + 1) - 1).trim();
  let words = line.split(/\s+/).filter((w) => w !== "");
  if (words.length > 0 && basename(words[0] as string) === "env") {
    words = words.slice(1).filter((w) => w !== "-S");
  }
  const [interpreter, ...args] = words;
  return interpreter === undefined ? null : { interpreter: basename(interpreter), args };
}

/**
 * A one-line hint when the command is an interpreter known to hold back output on a pipe and nothing asks it not
 * to; null otherwise (with `--pty`, or when the switch is there). `script` is the command's first bytes, for a
 * script whose `#!` line names the interpreter. `env` is what the child inherits (PYTHONUNBUFFERED).
 */
export function bufferingHint(
  cmd: string,
  args: readonly string[],
  pty: boolean,
  env: Readonly<Record<string, string>>,
  script: Uint8Array = new Uint8Array(0),
): string | null {
  if (pty) return null;
  let name = basename(cmd);
  let switches = args;
  const line = shebang(script);
  if (line !== null) {
    name = line.interpreter;
    switches = line.args;
  }
  const known = BUFFERING.find((b) => b.name.test(name));
  if (known === undefined || known.unbuffered(switches)) return null;
  if (name.startsWith("python") && (env.PYTHONUNBUFFERED ?? "") !== "") return null;
  return `${name} holds its output back on a pipe: clients may see nothing until it exits; use --pty, or ${known.fix}`;
}

/**
 * The start-up warnings about the command: whether it can run at all, then whether its output will be held back.
 * `passed` is the environment children inherit.
 */
export function commandWarnings(
  cmd: string,
  args: readonly string[],
  pty: boolean,
  passed: Readonly<Record<string, string>>,
  searchPath: string | undefined = process.env.PATH,
): string[] {
  const problem = commandProblem(cmd, searchPath);
  if (problem !== null) return [`${problem}; the server starts, and each room will fail until it is fixed`];
  const path = findCommand(cmd, searchPath);
  const hint = bufferingHint(cmd, args, pty, passed, path === null ? undefined : fileHead(path));
  return hint === null ? [] : [hint];
}
