import { realpathSync, statSync } from "node:fs";
import { resolve } from "node:path";
import type { ArgsDef } from "citty";
import pkg from "../package.json" with { type: "json" };
import { type CacheConfig, type Config, DEFAULTS, type FrameMode, type LogFormat } from "./config.ts";

export const USAGE = "Usage: scalesocket [OPTIONS] <CMD> [-- <ARGS>...]";

/** A mistake on the command line: printed as one line plus the usage line, exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/**
 * Every flag, as citty sees it after {@link prescan} normalised the argument list. Defaults that matter to
 * the user are written into the descriptions so `--help` shows them even where citty holds no default.
 */
export const args = {
  cmd: {
    type: "positional",
    required: false,
    valueHint: "CMD",
    description: "Command to wrap (arguments to it go after --)",
  },
  addr: {
    type: "string",
    valueHint: "ADDR",
    default: DEFAULTS.addr,
    description: "Interface and port to bind",
  },
  binary: {
    type: "boolean",
    alias: ["b"],
    description: "Binary mode: raw client messages, binary frames out",
  },
  cache: {
    type: "string",
    valueHint: "[TYPE:]SIZE",
    description: "Replay the last SIZE (1, 8, 64) messages to new clients; TYPE all (default) or tagged",
  },
  cachepersist: { type: "boolean", description: "Keep a room's cache after it closes" },
  delay: {
    type: "string",
    valueHint: "SECONDS",
    description: "Wait before attaching to the child (default: 1 with --tcp; old name --cmd-attach-delay)",
  },
  delimiters: {
    type: "string",
    valueHint: "CHARS",
    description: "Split child output on any of these characters (default: newline)",
  },
  null: { type: "boolean", description: "Split child output on NUL" },
  frame: {
    type: "string",
    valueHint: "MODE",
    description: "Framing both ways: json (default when bare) or gwsocket; write --frame=MODE",
  },
  clientframe: {
    type: "string",
    valueHint: "MODE",
    description: "Framing of client messages only (json or gwsocket)",
  },
  serverframe: {
    type: "string",
    valueHint: "MODE",
    description: "Framing of child messages only (json or gwsocket)",
  },
  json: {
    type: "boolean",
    description:
      'Same as --frame=json --joinmsg \'{"t":"Join","_from":#ID}\' --leavemsg \'{"t":"Leave","_from":#ID}\'',
  },
  joinmsg: {
    type: "string",
    valueHint: "MSG",
    description:
      "Write MSG to the child when a client joins (#ID, #ROOM, #QUERY_STRING, #REMOTE_ADDR, #QUERY_<NAME>)",
  },
  leavemsg: {
    type: "string",
    valueHint: "MSG",
    description: "Write MSG to the child when a client leaves (same placeholders)",
  },
  log: { type: "string", valueHint: "FMT", default: "text", description: "Log format: text or json" },
  metrics: { type: "boolean", description: "Serve OpenMetrics at /metrics" },
  api: { type: "boolean", description: "Serve the room API under /api/ (old name --stats)" },
  oneshot: { type: "boolean", description: "Serve one client, then exit" },
  passenv: {
    type: "string",
    valueHint: "LIST",
    default: DEFAULTS.passEnv,
    description: "Variables the child inherits, comma list of names or globs; --passenv= passes none",
  },
  rooms: {
    type: "string",
    valueHint: "LIST",
    description: "Accept only these rooms, comma list of names or globs",
  },
  maxrooms: {
    type: "string",
    valueHint: "NUM",
    description: "At most NUM rooms at once (old name --maxforks)",
  },
  staticdir: { type: "string", valueHint: "DIR", description: "Serve the files in DIR over HTTP" },
  tcp: { type: "boolean", description: "Talk to the child over TCP on 127.0.0.1:$PORT instead of stdio" },
  tcpports: {
    type: "string",
    valueHint: "START:END",
    default: DEFAULTS.tcpPorts,
    description: "Port range for --tcp",
  },
  maxbuffer: {
    type: "string",
    valueHint: "SIZE",
    default: `${DEFAULTS.maxBuffer / 1024 ** 2}M`,
    description: "Most bytes queued for one client or one child's stdin (K, M, G suffixes)",
  },
  grace: {
    type: "string",
    valueHint: "SECONDS",
    default: String(DEFAULTS.graceSeconds),
    description: "Time between SIGTERM and SIGKILL when a child is stopped",
  },
  v: { type: "boolean", description: "More logging: -v debug, -vv trace" },
  help: { type: "boolean", alias: ["h"], description: "Print help" },
  version: { type: "boolean", alias: ["V"], description: "Print version" },
} as const satisfies ArgsDef;

type FlagName = keyof typeof args;

/** Old upstream names, still accepted. */
const RENAMED: Readonly<Record<string, FlagName>> = {
  "cmd-attach-delay": "delay",
  stats: "api",
  maxforks: "maxrooms",
};

const SHORT: Readonly<Record<string, FlagName>> = { b: "binary", h: "help", V: "version" };

export interface Prescanned {
  /** Flags rewritten to `--name` or `--name=value`, and positionals, ready for citty. */
  argv: string[];
  /** Everything after `--`, untouched. */
  trailing: string[];
  verbosity: number;
  help: boolean;
  version: boolean;
}

/**
 * Normalises the upstream flag forms that citty cannot express: a bare `--frame` that must not take the next
 * word, `-vv` counts, `--passenv=` with an empty value, old flag names, and `--` before the command's arguments.
 * It also rejects unknown flags, missing values and values given to switches, which citty lets through.
 */
export function prescan(raw: readonly string[]): Prescanned {
  const out: Prescanned = { argv: [], trailing: [], verbosity: 0, help: false, version: false };
  for (let i = 0; i < raw.length; i++) {
    const arg = raw[i] as string;
    if (arg === "--") {
      out.trailing = raw.slice(i + 1);
      break;
    }
    if (/^-v+$/.test(arg)) {
      out.verbosity += arg.length - 1;
      continue;
    }
    if (!arg.startsWith("-") || arg === "-") {
      out.argv.push(arg);
      continue;
    }
    if (!arg.startsWith("--")) {
      for (const ch of arg.slice(1)) {
        // `-v` may be grouped with other switches (`-bv`), as clap allows.
        if (ch === "v") {
          out.verbosity++;
          continue;
        }
        const name = SHORT[ch];
        if (name === undefined) throw new UsageError(`unknown flag -${ch}`);
        pushSwitch(out, name);
      }
      continue;
    }
    const eq = arg.indexOf("=");
    const given = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    const inline = eq === -1 ? undefined : arg.slice(eq + 1);
    const name = RENAMED[given] ?? given;
    if (!Object.hasOwn(args, name) || name === "cmd" || name === "v")
      throw new UsageError(`unknown flag --${given}`);
    const def = args[name as FlagName];
    if (name === "frame") {
      // A bare --frame means json and never consumes the next word: `--frame head` wraps `head`.
      out.argv.push(`--frame=${inline ?? "json"}`);
    } else if (def.type === "boolean") {
      if (inline !== undefined) throw new UsageError(`flag --${given} takes no value`);
      pushSwitch(out, name as FlagName);
    } else {
      const value = inline ?? raw[++i];
      if (value === undefined) throw new UsageError(`flag --${given} needs a value <${def.valueHint}>`);
      out.argv.push(`--${name}=${value}`);
    }
  }
  return out;
}

function pushSwitch(out: Prescanned, name: FlagName): void {
  if (name === "help") out.help = true;
  else if (name === "version") out.version = true;
  else out.argv.push(`--${name}`);
}

export type CliAction = { kind: "help" } | { kind: "version" } | { kind: "serve"; config: Config };

type FlagValues = { [K in FlagName]?: (typeof args)[K]["type"] extends "boolean" ? true : string };

/**
 * Reads the argument list {@link prescan} normalised (`--name`, `--name=value`, positionals). Doing this here
 * rather than through citty's parseArgs saves its parser's 2-3 ms on every start; prescan already did the
 * checking that parser would add.
 */
function readNormalized(argv: readonly string[]): { values: FlagValues; positionals: string[] } {
  const values: Record<string, string | true> = {};
  const positionals: string[] = [];
  for (const arg of argv) {
    if (!arg.startsWith("--")) {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    if (eq === -1) values[arg.slice(2)] = true;
    else values[arg.slice(2, eq)] = arg.slice(eq + 1);
  }
  return { values: values as FlagValues, positionals };
}

/** Turns the raw argument list into what to do. Pure but for a stat of `--staticdir`; throws {@link UsageError}. */
export function resolveCli(raw: readonly string[]): CliAction {
  const pre = prescan(raw);
  if (pre.help) return { kind: "help" };
  if (pre.version) return { kind: "version" };
  return { kind: "serve", config: resolveConfig(raw, pre) };
}

/** Validates every flag into one {@link Config}. Never touches sockets or processes. */
export function resolveConfig(raw: readonly string[], pre: Prescanned = prescan(raw)): Config {
  const { values: a, positionals } = readNormalized(pre.argv);
  if (positionals.length === 0) throw new UsageError("missing <CMD>, the command to wrap");
  if (positionals.length > 1) {
    throw new UsageError(`unexpected argument '${positionals[1]}' (arguments to the command go after --)`);
  }
  const [hostname, port] = parseAddr(a.addr ?? DEFAULTS.addr);
  const { clientFrame, serverFrame } = parseFraming(a.frame, a.clientframe, a.serverframe, a.json === true);
  if (a.delimiters !== undefined && a.null === true)
    throw new UsageError("--delimiters conflicts with --null");
  if (a.delimiters === "") throw new UsageError("--delimiters needs at least one character");

  const config: Config = {
    cmd: positionals[0] as string,
    args: pre.trailing,
    hostname,
    port,
    binary: a.binary === true,
    cache: a.cache === undefined ? null : parseCache(a.cache),
    cachePersist: a.cachepersist === true,
    delay:
      a.delay === undefined
        ? a.tcp === true
          ? DEFAULTS.tcpDelaySeconds
          : null
        : parseSeconds("delay", a.delay),
    delimiters: a.null === true ? "\0" : (a.delimiters ?? null),
    clientFrame,
    serverFrame,
    joinMsg: a.joinmsg ?? (a.json ? '{"t":"Join","_from":#ID}' : null),
    leaveMsg: a.leavemsg ?? (a.json ? '{"t":"Leave","_from":#ID}' : null),
    log: oneOf("log", a.log ?? "text", ["text", "json"] as const) satisfies LogFormat,
    metrics: a.metrics === true,
    api: a.api === true,
    oneshot: a.oneshot === true,
    passEnv: splitList(a.passenv ?? DEFAULTS.passEnv),
    rooms: a.rooms === undefined ? null : nonEmptyList("rooms", a.rooms),
    maxRooms: a.maxrooms === undefined ? null : parsePositiveInt("maxrooms", a.maxrooms),
    staticDir: a.staticdir === undefined ? null : checkDir(a.staticdir),
    tcp: a.tcp === true,
    tcpPorts: parsePortRange(a.tcpports ?? DEFAULTS.tcpPorts),
    verbosity: pre.verbosity,
    maxBuffer: a.maxbuffer === undefined ? DEFAULTS.maxBuffer : parseSize("maxbuffer", a.maxbuffer),
    graceMs: Math.round(
      (a.grace === undefined ? DEFAULTS.graceSeconds : parseSeconds("grace", a.grace)) * 1000,
    ),
    tcpTimeoutMs: DEFAULTS.tcpTimeoutMs,
    osPipes: true,
  };

  checkCombinations(config);
  return config;
}

/** Flags that are each valid but make no sense together: refused rather than one silently ignored. */
function checkCombinations(c: Config): void {
  if (c.delimiters !== null && /[\u0080-\uffff]/.test(c.delimiters)) {
    throw new UsageError(
      `invalid value '${c.delimiters}' for --delimiters: only ASCII characters can delimit`,
    );
  }
  if (c.binary && (c.clientFrame === "json" || c.serverFrame === "json")) {
    throw new UsageError("--binary conflicts with JSON framing (JSON messages are text)");
  }
  if (c.serverFrame === "gwsocket" && c.delimiters !== null) {
    throw new UsageError(
      `--${c.delimiters === "\0" ? "null" : "delimiters"} conflicts with gwsocket framing (its frames carry their length)`,
    );
  }
  if (c.clientFrame === "gwsocket" && (c.joinMsg !== null || c.leaveMsg !== null)) {
    throw new UsageError(
      `--${c.joinMsg !== null ? "joinmsg" : "leavemsg"} conflicts with gwsocket framing (it announces clients with open and close frames)`,
    );
  }
}

function parseFraming(
  frame: string | undefined,
  client: string | undefined,
  server: string | undefined,
  json: boolean,
): { clientFrame: FrameMode | null; serverFrame: FrameMode | null } {
  const modes = ["json", "gwsocket"] as const;
  if (frame !== undefined && (client !== undefined || server !== undefined)) {
    throw new UsageError(`--frame conflicts with --${client !== undefined ? "clientframe" : "serverframe"}`);
  }
  if (frame !== undefined) {
    const mode = oneOf("frame", frame, modes);
    if (json && mode !== "json") throw new UsageError(`--json conflicts with --frame=${mode}`);
    return { clientFrame: mode, serverFrame: mode };
  }
  const clientFrame = client === undefined ? null : oneOf("clientframe", client, modes);
  const serverFrame = server === undefined ? null : oneOf("serverframe", server, modes);
  if (json) {
    if ((clientFrame ?? "json") !== "json" || (serverFrame ?? "json") !== "json") {
      throw new UsageError("--json conflicts with gwsocket framing");
    }
    return { clientFrame: "json", serverFrame: "json" };
  }
  return { clientFrame, serverFrame };
}

function oneOf<const T extends readonly string[]>(flag: string, value: string, options: T): T[number] {
  if ((options as readonly string[]).includes(value)) return value as T[number];
  throw new UsageError(`invalid value '${value}' for --${flag}: expected ${options.join(" or ")}`);
}

/** `host:port`, `[v6]:port` or `:port`; port 0 asks the system for a free one. */
function parseAddr(value: string): [string, number] {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535) throw new UsageError(`invalid value '${value}' for --addr: expected HOST:PORT`);
  return [m[1] ?? (m[2] || "0.0.0.0"), port];
}

function parseCache(value: string): CacheConfig {
  const m = /^(?:(all|tagged):)?(1|8|64)$/.exec(value);
  if (!m)
    throw new UsageError(
      `invalid value '${value}' for --cache: expected [all:|tagged:]SIZE with SIZE 1, 8 or 64`,
    );
  return { type: (m[1] ?? "all") as CacheConfig["type"], size: Number(m[2]) as CacheConfig["size"] };
}

function parseSeconds(flag: string, value: string): number {
  // Plain decimals only: Number() would also take `0x10`, `1e3` and surrounding spaces.
  const n = /^(\d+\.?\d*|\.\d+)$/.test(value) ? Number(value) : Number.NaN;
  if (!(n >= 0 && n <= 86_400)) {
    throw new UsageError(`invalid value '${value}' for --${flag}: expected seconds, 0 to 86400`);
  }
  return n;
}

function parsePositiveInt(flag: string, value: string): number {
  if (!/^\d{1,9}$/.test(value) || Number(value) < 1) {
    throw new UsageError(`invalid value '${value}' for --${flag}: expected a whole number from 1`);
  }
  return Number(value);
}

const SIZE_UNITS: Readonly<Record<string, number>> = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 };

/** Bytes, with an optional K, M or G suffix (powers of 1024); at least 1 KiB so one message fits. */
function parseSize(flag: string, value: string): number {
  const m = /^(\d+)([KMG]?)i?B?$/i.exec(value);
  const bytes = m ? Number(m[1]) * (SIZE_UNITS[(m[2] ?? "").toUpperCase()] ?? 1) : Number.NaN;
  if (!(bytes >= 1024 && bytes <= 2 ** 40)) {
    throw new UsageError(`invalid value '${value}' for --${flag}: expected a size from 1K, like 512K or 4M`);
  }
  return bytes;
}

function parsePortRange(value: string): [number, number] {
  const m = /^(\d{1,5}):(\d{1,5})$/.exec(value);
  const start = Number(m?.[1]);
  const end = Number(m?.[2]);
  if (!m || start < 1 || end > 65535 || start > end) {
    throw new UsageError(`invalid value '${value}' for --tcpports: expected START:END within 1:65535`);
  }
  return [start, end];
}

function splitList(value: string): string[] {
  return value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

function nonEmptyList(flag: string, value: string): string[] {
  const list = splitList(value);
  if (list.length === 0) throw new UsageError(`--${flag} needs at least one entry`);
  return list;
}

function checkDir(dir: string): string {
  // resolve("") is the working directory, which an empty `--staticdir=` must not serve by accident.
  if (dir === "") throw new UsageError("--staticdir needs a directory");
  const path = resolve(dir);
  try {
    // Not only ENOENT: a file in the middle (ENOTDIR) or a locked parent (EACCES) throws despite the option.
    if (statSync(path, { throwIfNoEntry: false })?.isDirectory()) {
      // The real path, so the static file check can compare real paths after resolving symlinks.
      return realpathSync(path);
    }
  } catch {}
  throw new UsageError(`--staticdir '${dir}' is not a directory`);
}

/** The `--help` text: every flag with its default, then the usage line. */
export async function helpText(): Promise<string> {
  // citty only renders the help, so it is loaded only for it.
  const { defineCommand, renderUsage } = await import("citty");
  const command = defineCommand({
    meta: { name: "scalesocket", version: pkg.version, description: pkg.description },
    args,
  });
  // citty prints every flag as `--name`, but upstream's `-v` has no long form (`--v` is refused).
  const text = (await renderUsage(command)).replace(/(?<!-)--v(?![\w-])/, " -v");
  return `${text}\n\n${USAGE}\n`;
}
