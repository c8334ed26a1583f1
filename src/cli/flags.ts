import type { CommandDef } from "citty";
import pkg from "../../package.json" with { type: "json" };
import { DEFAULTS } from "../config.ts";
import { VERSION } from "../version.ts";
import type { Flag } from "./flag.ts";
import { CHILD_FLAGS } from "./flags-child.ts";

export { type Flag, GROUPS, type Group, USAGE } from "./flag.ts";

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
  devconsole: {
    type: "boolean",
    group: "Server",
    description: "Serve a page at / to try rooms from a browser",
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
  ...CHILD_FLAGS,
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
  cluster: {
    type: "string",
    valueHint: "URL",
    group: "Cluster",
    description:
      "Share rooms with other nodes through this Redis (redis:// or rediss://, password and db allowed); each room lives on one node",
  },
  advertise: {
    type: "string",
    valueHint: "URL",
    shownDefault: "ws://ADDR",
    group: "Cluster",
    description: "How other nodes reach this one (ws://10.0.0.5:9000); needed when --addr is a wildcard",
  },
  clustersecret: {
    type: "string",
    // KEY, not SECRET: the longest flag so far, and every letter more widens the help's first column.
    valueHint: "KEY",
    group: "Cluster",
    description: "Signs the clients nodes forward to each other (32 bytes or more); needed with --cluster",
  },
  lease: {
    type: "string",
    valueHint: "SECS",
    default: String(DEFAULTS.leaseSeconds),
    group: "Cluster",
    description: "How long a node's claim on a room lasts unless renewed (renewed every third)",
  },
  drain: {
    type: "string",
    valueHint: "SECS",
    group: "Cluster",
    description:
      "On SIGTERM, answer /health with 503, open no new rooms and serve the open ones up to SECS before stopping",
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
