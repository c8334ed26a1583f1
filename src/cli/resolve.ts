import { type Config, DEFAULTS, type FrameMode, type LogFormat } from "../config.ts";
import { parseAuth, parseOrigins, parseTls, parseTrustProxy } from "./access.ts";
import { parseCluster, parseDrain } from "./cluster.ts";
import { blameVariables, envFlags, givenFlags } from "./environ.ts";
import { UsageError } from "./errors.ts";
import { FLAGS, type FlagName, FRAME_MODES } from "./flags.ts";
import { type Prescanned, prescan } from "./prescan.ts";
import {
  checkDir,
  nonEmptyList,
  oneOf,
  parseAddr,
  parseCache,
  parseIdleTimeout,
  parseLimit,
  parsePingMs,
  parsePortRange,
  parsePositiveInt,
  parsePtySize,
  parseSeconds,
  parseSize,
  parseSubprotocols,
  parseUnixAddr,
  splitList,
} from "./values.ts";

export type CliAction = { kind: "help" } | { kind: "version" } | { kind: "serve"; config: Config };

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Turns the raw argument list and the `SCALESOCKET_*` variables of `env` into what to do. Pure but for reading
 * `--staticdir`, `--jwtkey` and the TLS files; throws {@link UsageError}.
 */
export function resolveCli(raw: readonly string[], env: Env = process.env): CliAction {
  const pre = prescan(raw);
  if (pre.help) return { kind: "help" };
  if (pre.version) return { kind: "version" };
  return { kind: "serve", config: resolveConfig(raw, pre, env) };
}

/**
 * Validates every flag into one {@link Config}; a flag may also come from `SCALESOCKET_<FLAG>` in `env`, and the
 * command line wins. Never touches sockets or processes.
 */
export function resolveConfig(
  raw: readonly string[],
  pre: Prescanned = prescan(raw),
  env: Env = process.env,
): Config {
  const fromEnv = envFlags(env, givenFlags(pre.argv, pre.verbosity));
  try {
    return configOf({ ...pre, argv: [...fromEnv.argv, ...pre.argv] }, pre.verbosity || fromEnv.verbosity);
  } catch (err) {
    throw err instanceof UsageError ? blameVariables(err, fromEnv.from) : err;
  }
}

function configOf(pre: Prescanned, verbosity: number): Config {
  const { values: a, positionals } = readNormalized(pre.argv);
  const cmd = commandOf(positionals, pre.misreadFrameMode);
  const unixPath = parseUnixAddr(a.addr);
  const [hostname, port] = unixPath === null ? parseAddr(a.addr) : ["localhost", 0];
  const idleTimeout = parseIdleTimeout(a.idletimeout);
  const { clientFrame, serverFrame } = parseFraming(a.frame, a.clientframe, a.serverframe, a.json === true);
  if (a.delimiters !== undefined && a.null === true)
    throw new UsageError("--delimiters conflicts with --null");
  if (a.delimiters === "") throw new UsageError("--delimiters needs at least one character");
  const auth = parseAuth(a);
  const graceMs = Math.round(parseSeconds("grace", a.grace) * 1000);

  const config: Config = {
    cmd,
    args: pre.trailing,
    hostname,
    port,
    unixPath,
    deflate: a.deflate === true,
    subprotocols: a.subprotocol === undefined ? null : parseSubprotocols(a.subprotocol),
    idleTimeout,
    pingMs: a.pingms === undefined ? null : parsePingMs(a.pingms, idleTimeout),
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
    joinMsg: a.joinmsg ?? (a.json === true ? joinJson(auth !== null) : null),
    leaveMsg: a.leavemsg ?? (a.json === true ? '{"t":"Leave","_from":#ID}' : null),
    log: oneOf("log", a.log, ["text", "json"] as const) satisfies LogFormat,
    metrics: a.metrics === true,
    api: a.api === true,
    oneshot: a.oneshot === true,
    passEnv: splitList(a.passenv),
    rooms: a.rooms === undefined ? null : nonEmptyList("rooms", a.rooms),
    maxRooms: parseLimit("maxrooms", a.maxrooms),
    maxClients: a.maxclients === undefined ? null : parsePositiveInt("maxclients", a.maxclients),
    maxPerIp: a.maxperip === undefined ? null : parsePositiveInt("maxperip", a.maxperip),
    maxMessage: parseSize("maxmessage", a.maxmessage),
    rateLimit: a.ratelimit === undefined ? null : parsePositiveInt("ratelimit", a.ratelimit),
    maxQueued: parseSize("maxqueued", a.maxqueued),
    crashBackoff: DEFAULTS.crashBackoff,
    staticDir: a.staticdir === undefined ? null : checkDir(a.staticdir),
    devConsole: a.devconsole === true,
    tcp: a.tcp === true,
    pty: parsePty(a.pty === true, a.ptysize),
    passStderr: a.passstderr === true,
    tcpPorts: parsePortRange(a.tcpports),
    verbosity,
    maxBuffer: parseSize("maxbuffer", a.maxbuffer),
    graceMs,
    tcpTimeoutMs: DEFAULTS.tcpTimeoutMs,
    origins: a.origin === undefined ? null : parseOrigins(a.origin),
    auth,
    authTimeoutMs: DEFAULTS.authTimeoutMs,
    tls: parseTls(a),
    trustProxy: a.trustproxy === undefined ? null : parseTrustProxy(a.trustproxy),
    osPipes: true,
    cluster: parseCluster(
      a,
      { hostname, unixPath, graceMs },
      pre.argv.some((x) => x.startsWith("--lease=")),
    ),
    drainMs: parseDrain(a.drain),
  };

  checkCombinations(config);
  return config;
}

/** `--pty` and its size; `--ptysize` alone would be ignored, so it is refused. */
function parsePty(pty: boolean, size: string | undefined): Config["pty"] {
  if (!pty) {
    if (size !== undefined) throw new UsageError("--ptysize needs --pty");
    return null;
  }
  return parsePtySize(size ?? DEFAULTS.ptySize);
}

/** `--json`'s join message; with an auth flag it names the user, whom the child otherwise cannot tell apart. */
function joinJson(authenticated: boolean): string {
  return authenticated ? '{"t":"Join","_from":#ID,"_user":"#USER"}' : '{"t":"Join","_from":#ID}';
}

type Table = typeof FLAGS;
type Defaulted = { [K in FlagName]: Table[K] extends { default: string } ? K : never }[FlagName];
type Value<K extends FlagName> = Table[K]["type"] extends "boolean" ? true : string;
/** The flags as read: those with a default in the table always have a value, the others when given. */
type FlagValues = { [K in Defaulted]: Value<K> } & { [K in Exclude<FlagName, Defaulted>]?: Value<K> };

/**
 * Reads the list {@link prescan} normalised (`--name`, `--name=value`, positionals) and fills in the table's
 * defaults. citty's parseArgs does the same and nothing more once prescan has run, and it costs start-up
 * time (it loads node:util and folds every flag name through camelCase and kebabCase on each run).
 */
function readNormalized(argv: readonly string[]): { values: FlagValues; positionals: string[] } {
  const values: Record<string, string | true> = {};
  for (const [name, flag] of Object.entries(FLAGS)) if ("default" in flag) values[name] = flag.default;
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

/**
 * The one positional, CMD. A framing mode right after a bare `--frame` (`--frame json cat`) was meant as its
 * value; the error says so rather than blaming the word that comes after it.
 */
function commandOf(positionals: readonly string[], misreadFrameMode: string | undefined): string {
  const [cmd, extra] = positionals;
  if (cmd === undefined) throw new UsageError("missing <CMD>, the command to wrap");
  if (extra !== undefined) {
    const hint =
      misreadFrameMode === undefined
        ? "arguments to the command go after --"
        : `a bare --frame takes no value: write --frame=${misreadFrameMode}`;
    throw new UsageError(`unexpected argument '${extra}' (${hint})`);
  }
  if (misreadFrameMode !== undefined) {
    throw new UsageError(
      `missing <CMD>: '${cmd}' follows a bare --frame, which takes no value (write --frame=${cmd})`,
    );
  }
  return cmd;
}

/** Flags that are each valid but make no sense together: refused rather than one silently ignored. */
function checkCombinations(c: Config): void {
  // Both would answer `/`; websocketd refuses the pair too.
  if (c.devConsole && c.staticDir !== null) throw new UsageError("--devconsole conflicts with --staticdir");
  // A terminal is the child's stdio; a --tcp child talks over a socket and keeps its stdio for the log.
  if (c.pty !== null && c.tcp)
    throw new UsageError("--pty conflicts with --tcp (a --tcp child talks over TCP)");
  if (c.pty !== null && c.passStderr) {
    throw new UsageError(
      "--passstderr conflicts with --pty (stderr is the terminal: it reaches the clients)",
    );
  }
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
  if (frame !== undefined && (client !== undefined || server !== undefined)) {
    throw new UsageError(`--frame conflicts with --${client !== undefined ? "clientframe" : "serverframe"}`);
  }
  if (frame !== undefined) {
    const mode = frameMode("frame", frame);
    if (json && mode !== "json") throw new UsageError(`--json conflicts with --frame=${mode}`);
    return { clientFrame: mode, serverFrame: mode };
  }
  const clientFrame = client === undefined ? null : frameMode("clientframe", client);
  const serverFrame = server === undefined ? null : frameMode("serverframe", server);
  if (json) {
    if ((clientFrame ?? "json") !== "json" || (serverFrame ?? "json") !== "json") {
      throw new UsageError("--json conflicts with gwsocket framing");
    }
    return { clientFrame: "json", serverFrame: "json" };
  }
  return { clientFrame, serverFrame };
}

function frameMode(flag: string, value: string): FrameMode {
  // Upstream 0.1 named gwsocket's framing `binary`, and its README still shows it.
  if (value === "binary") {
    throw new UsageError(
      `invalid value 'binary' for --${flag}: expected json or gwsocket (0.1's binary is gwsocket)`,
    );
  }
  return oneOf(flag, value, FRAME_MODES);
}
