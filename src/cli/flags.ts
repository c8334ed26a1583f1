import type { ArgDef, CommandDef } from "citty";
import pkg from "../../package.json" with { type: "json" };
import { DEFAULTS } from "../config.ts";
import { VERSION } from "../version.ts";

/** The one usage line, as upstream's clap prints it; every usage error ends with it. */
export const USAGE = "Usage: scalesocket [OPTIONS] <CMD> [-- <ARGS>...]";

/** The sections of `--help`, in the order they are printed. */
export const GROUPS = [
  "Server",
  "Access",
  "Rooms and children",
  "Framing",
  "Output splitting",
  "Limits",
  "Observability",
  "Help",
] as const;

export type Group = (typeof GROUPS)[number];

/**
 * One flag, in citty's shape (`type`, `default`, `valueHint`, `alias`), plus what `--help` needs: its group,
 * and `shownDefault` for a default the table cannot hold as a value (it depends on other flags, or is none).
 */
export type Flag = ArgDef & { group: Group; shownDefault?: string };

/**
 * Every flag, read by `prescan`, the resolver and `--help`, in the order `--help` lists them within each
 * group. Names are upstream 0.2.4's, all lower case without dashes, as its users type them.
 */
export const FLAGS = {
  cmd: {
    type: "positional",
    required: false,
    valueHint: "CMD",
    group: "Server",
    description: "Command to wrap, run without a shell",
  },
  addr: {
    type: "string",
    valueHint: "ADDR",
    default: DEFAULTS.addr,
    group: "Server",
    description: "Interface and port to bind, HOST:PORT or :PORT, or unix:PATH for a unix socket",
  },
  staticdir: {
    type: "string",
    valueHint: "DIR",
    group: "Server",
    description: "Serve the files in DIR over HTTP",
  },
  oneshot: { type: "boolean", group: "Server", description: "Serve one client, then exit" },
  tlscert: {
    type: "string",
    valueHint: "FILE",
    group: "Server",
    description: "Serve https and wss with this PEM certificate (chain allowed); needs --tlskey",
  },
  tlskey: {
    type: "string",
    valueHint: "FILE",
    group: "Server",
    description: "The PEM private key of --tlscert",
  },
  origin: {
    type: "string",
    valueHint: "LIST",
    shownDefault: "any",
    group: "Access",
    description:
      "Accept websockets only from these Origins, comma list: https://example.com, globs (https://*.example.com) or same (the request's Host); requests without Origin pass",
  },
  jwtsecret: {
    type: "string",
    valueHint: "SECRET",
    group: "Access",
    description:
      "Require a JWT signed with this secret (HS256/384/512, 32 bytes or more), from ?token= or Authorization: Bearer",
  },
  jwtkey: {
    type: "string",
    valueHint: "FILE",
    group: "Access",
    description: "Require a JWT signed by this PEM public key or JWKS file (RS*, PS*, ES*, EdDSA)",
  },
  authurl: {
    type: "string",
    valueHint: "URL",
    group: "Access",
    description:
      "Ask URL before each upgrade (GET with the client's Cookie and Authorization): 2xx admits, X-Scalesocket-User names the user",
  },
  trustproxy: {
    type: "string",
    valueHint: "LIST",
    group: "Access",
    description:
      "Proxies (IPs or CIDRs) whose Forwarded or X-Forwarded-For header gives the client's address",
  },
  deflate: {
    type: "boolean",
    group: "Server",
    description: "Compress messages for clients that offer permessage-deflate",
  },
  subprotocol: {
    type: "string",
    valueHint: "LIST",
    group: "Server",
    description:
      "Answer with the first of these subprotocols the client offers, comma list; a client offering only others gets 400",
  },
  idletimeout: {
    type: "string",
    // Not SECONDS: one letter more than the longest flag so far would widen the whole help's first column.
    valueHint: "SECS",
    default: String(DEFAULTS.idleTimeoutSeconds),
    group: "Server",
    description: "Close a client after this long without traffic; 0 never (else 8 to 960)",
  },
  pingms: {
    type: "string",
    valueHint: "MS",
    shownDefault: "shortly before --idletimeout",
    group: "Server",
    description: "Ping every client this often; the idle time then counts from its last pong",
  },
  rooms: {
    type: "string",
    valueHint: "LIST",
    group: "Rooms and children",
    description: "Accept only these rooms, comma list of names or globs",
  },
  passenv: {
    type: "string",
    valueHint: "LIST",
    default: DEFAULTS.passEnv,
    group: "Rooms and children",
    description: "Variables the child inherits, comma list of names or globs; --passenv= passes none",
  },
  joinmsg: {
    type: "string",
    valueHint: "MSG",
    group: "Rooms and children",
    description:
      "Write MSG to the child when a client joins; #ID, #ROOM, #QUERY_STRING, #REMOTE_ADDR, #USER and #QUERY_<NAME> are replaced",
  },
  leavemsg: {
    type: "string",
    valueHint: "MSG",
    group: "Rooms and children",
    description: "Write MSG to the child when a client leaves (same placeholders)",
  },
  cache: {
    type: "string",
    valueHint: "[TYPE:]SIZE",
    group: "Rooms and children",
    description:
      'Replay a room\'s last SIZE (1, 8 or 64) messages to each new client; TYPE all (default) or tagged (only JSON with "_cache": true)',
  },
  cachepersist: {
    type: "boolean",
    group: "Rooms and children",
    description: "Keep a room's cache after its last client left",
  },
  tcp: {
    type: "boolean",
    group: "Rooms and children",
    description: "Talk to the child over TCP: it gets PORT and listens on 127.0.0.1:$PORT",
  },
  pty: {
    type: "boolean",
    group: "Rooms and children",
    description: "Run the child on a pseudo-terminal: it flushes each line, as on a console",
  },
  ptysize: {
    type: "string",
    valueHint: "COLSxROWS",
    shownDefault: DEFAULTS.ptySize,
    group: "Rooms and children",
    description: "Size of the --pty terminal",
  },
  tcpports: {
    type: "string",
    valueHint: "START:END",
    default: DEFAULTS.tcpPorts,
    group: "Rooms and children",
    description: "Port range for --tcp",
  },
  delay: {
    type: "string",
    valueHint: "SECONDS",
    shownDefault: `${DEFAULTS.tcpDelaySeconds} with --tcp`,
    group: "Rooms and children",
    description: "Wait before attaching to the child (old name --cmd-attach-delay)",
  },
  grace: {
    type: "string",
    valueHint: "SECONDS",
    default: String(DEFAULTS.graceSeconds),
    group: "Rooms and children",
    description: "Time between SIGTERM and SIGKILL when a child is stopped",
  },
  passstderr: {
    type: "boolean",
    group: "Rooms and children",
    description: 'Send the child\'s stderr lines to its clients too ({"_stderr": LINE} with JSON framing)',
  },
  json: {
    type: "boolean",
    group: "Framing",
    description:
      'JSON both ways, with join and leave messages: --frame=json --joinmsg \'{"t":"Join","_from":#ID}\' --leavemsg \'{"t":"Leave","_from":#ID}\'',
  },
  frame: {
    type: "string",
    valueHint: "MODE",
    group: "Framing",
    description: "Framing both ways: json (when bare) or gwsocket; a bare --frame takes no value",
  },
  clientframe: {
    type: "string",
    valueHint: "MODE",
    group: "Framing",
    description: "Framing of client messages only: json or gwsocket",
  },
  serverframe: {
    type: "string",
    valueHint: "MODE",
    group: "Framing",
    description: "Framing of the child's messages only: json or gwsocket",
  },
  binary: {
    type: "boolean",
    alias: ["b"],
    group: "Framing",
    description: "Binary mode: client messages are written raw, child output goes out as binary frames",
  },
  delimiters: {
    type: "string",
    valueHint: "CHARS",
    shownDefault: "newline",
    group: "Output splitting",
    description: "Split the child's output on any of these characters",
  },
  null: { type: "boolean", group: "Output splitting", description: "Split the child's output on NUL" },
  maxrooms: {
    type: "string",
    valueHint: "NUM",
    default: String(DEFAULTS.maxRooms),
    group: "Limits",
    description:
      "At most NUM rooms, so NUM children (counting those still stopping), at once; 0 is no limit (old name --maxforks)",
  },
  maxclients: {
    type: "string",
    valueHint: "NUM",
    shownDefault: "no limit",
    group: "Limits",
    description: "At most NUM open websockets",
  },
  maxperip: {
    type: "string",
    valueHint: "NUM",
    shownDefault: "no limit",
    group: "Limits",
    description: "At most NUM open websockets from one client IP",
  },
  maxmessage: {
    type: "string",
    valueHint: "SIZE",
    default: `${DEFAULTS.maxMessage / 1024 ** 2}M`,
    group: "Limits",
    description: "Largest message a client may send",
  },
  ratelimit: {
    type: "string",
    valueHint: "NUM",
    shownDefault: "no limit",
    group: "Limits",
    description: "At most NUM messages per second from one client, bursts of 2*NUM",
  },
  maxbuffer: {
    type: "string",
    valueHint: "SIZE",
    default: `${DEFAULTS.maxBuffer / 1024 ** 2}M`,
    group: "Limits",
    description: "Most bytes queued for one client or one child's stdin (K, M, G suffixes)",
  },
  maxqueued: {
    type: "string",
    valueHint: "SIZE",
    default: `${DEFAULTS.maxQueued / 1024 ** 2}M`,
    group: "Limits",
    description: "Most bytes queued for all clients together; the most behind are closed first",
  },
  metrics: { type: "boolean", group: "Observability", description: "Serve OpenMetrics at /metrics" },
  api: {
    type: "boolean",
    group: "Observability",
    description: "Serve the room API under /api/ (old name --stats)",
  },
  log: {
    type: "string",
    valueHint: "FMT",
    default: "text",
    group: "Observability",
    description: "Log format: text or json",
  },
  v: { type: "boolean", group: "Observability", description: "More logging: -v debug, -vv trace" },
  help: { type: "boolean", alias: ["h"], group: "Help", description: "Print this help" },
  version: { type: "boolean", alias: ["V"], group: "Help", description: "Print the version" },
} as const satisfies Record<string, Flag>;

export type FlagName = keyof typeof FLAGS;

/** Old upstream names, still accepted. */
export const RENAMED: Readonly<Record<string, FlagName>> = {
  "cmd-attach-delay": "delay",
  stats: "api",
  maxforks: "maxrooms",
};

/** Short switches; `-v` is not here because it counts rather than switches. */
export const SHORT: Readonly<Record<string, FlagName>> = { b: "binary", h: "help", V: "version" };

/** The framing modes, which a bare `--frame` must not take as its value. */
export const FRAME_MODES = ["json", "gwsocket"] as const;

/**
 * The command as citty defines it: name, version and description from package.json, and the flag table.
 * Written with `satisfies CommandDef` rather than through `defineCommand`, which returns its argument typed
 * as `CommandDef` and so would hide the literal types `--help` and the resolver read.
 */
export const command = {
  meta: { name: pkg.name, version: VERSION, description: pkg.description },
  args: FLAGS,
} as const satisfies CommandDef<typeof FLAGS>;
