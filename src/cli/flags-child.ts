import { DEFAULTS } from "../config.ts";
import type { Flag } from "./flag.ts";

/** The flags about rooms, their children, framing and output splitting, in `--help`'s order. */
export const CHILD_FLAGS = {
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
} as const satisfies Record<string, Flag>;
