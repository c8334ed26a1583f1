import { CLOSE_REASONS, type Counters, REFUSAL_REASONS } from "./stats.ts";

/** What the metrics text needs to know of one open room. */
export interface RoomSample {
  name: string;
  /** Connections the room has accepted since it opened. */
  connectionsTotal: number;
  /** Connections open now. */
  connectionsOpen: number;
}

export const CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/** Escapes a label value as OpenMetrics requires: backslash, double quote and line feed. */
export function escapeLabel(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === "\n" ? "\\n" : `\\${c}`));
}

/** One metric family: its name, type, help, and samples (labels as rendered, value). */
export type Family = [
  name: string,
  type: "counter" | "gauge",
  help: string,
  samples: [labels: string, value: number][],
];

function family(lines: string[], [name, type, help, samples]: Family): void {
  lines.push(`# TYPE ${name} ${type}`, `# HELP ${name} ${help}`);
  const suffix = type === "counter" ? "_total" : "";
  for (const [labels, value] of samples) lines.push(`${name}${suffix}${labels} ${value}`);
}

/**
 * Renders the OpenMetrics exposition. The two upstream families keep their names and `room` label so existing
 * dashboards work; per-room series exist only while the room is open, so the series count stays bounded by the
 * open rooms however many room names come and go (a reopened room's counter starts again, which Prometheus reads
 * as a counter reset). `extra` are families of other parts (the cluster's), rendered last.
 */
export function renderMetrics(rooms: Iterable<RoomSample>, c: Counters, extra: Family[] = []): string {
  const list = [...rooms];
  const room = (r: RoomSample) => `{room="${escapeLabel(r.name)}"}`;
  const lines: string[] = [];
  const families: Family[] = [
    [
      "scalesocket_websocket_connections",
      "counter",
      "Websocket connections accepted, by room (open rooms only).",
      list.map((r) => [room(r), r.connectionsTotal]),
    ],
    [
      "scalesocket_websocket_connections_open",
      "gauge",
      "Websocket connections open now, by room.",
      list.map((r) => [room(r), r.connectionsOpen]),
    ],
    [
      "scalesocket_rooms_open",
      "gauge",
      "Rooms open now, each with its own child process.",
      [["", list.length]],
    ],
    [
      "scalesocket_connections",
      "counter",
      "Websocket connections accepted since the server started.",
      [["", c.connections]],
    ],
    [
      "scalesocket_connections_refused",
      "counter",
      "Websocket upgrades refused (bad or reserved room, disallowed room, too many rooms, shutdown).",
      [["", c.refused]],
    ],
    [
      "scalesocket_refusals",
      "counter",
      "Websocket connections refused, by reason (before the upgrade or before joining a room).",
      REFUSAL_REASONS.map((r) => [`{reason="${r}"}`, c.refusedBy[r]]),
    ],
    [
      "scalesocket_clients_closed",
      "counter",
      "Open clients closed by a limit, by which (--maxbuffer, --maxqueued, --ratelimit, --maxmessage).",
      CLOSE_REASONS.map((r) => [`{reason="${r}"}`, c.closedBy[r]]),
    ],
    ["scalesocket_children_spawned", "counter", "Child processes started.", [["", c.childrenSpawned]]],
    [
      "scalesocket_children_spawn_failures",
      "counter",
      "Child processes that could not be started.",
      [["", c.spawnFailures]],
    ],
    [
      "scalesocket_children_exited",
      "counter",
      "Child processes that ended, by how.",
      [
        ['{how="code_zero"}', c.childrenExitedZero],
        ['{how="code_nonzero"}', c.childrenExitedNonZero],
        ['{how="signal"}', c.childrenKilledBySignal],
      ],
    ],
    [
      "scalesocket_messages",
      "counter",
      "Messages, by direction (child_to_room counts each child message once).",
      [
        ['{direction="client_to_child"}', c.messagesToChild],
        ['{direction="child_to_room"}', c.messagesFromChild],
      ],
    ],
    [
      "scalesocket_bytes",
      "counter",
      "Bytes written to children's stdin and read from their stdout.",
      [
        ['{direction="client_to_child"}', c.bytesToChild],
        ['{direction="child_to_room"}', c.bytesFromChild],
      ],
    ],
    [
      "scalesocket_slow_clients_closed",
      "counter",
      "Clients closed (1013) because their unsent data passed --maxbuffer.",
      [["", c.slowClientsClosed]],
    ],
    [
      "scalesocket_messages_dropped",
      "counter",
      "Messages dropped, by reason.",
      [
        ['{reason="child_stdin_full"}', c.droppedToChild],
        ['{reason="invalid_client_message"}', c.invalidClientMessages],
        ['{reason="bad_child_message"}', c.oversizeMessages],
      ],
    ],
  ];
  for (const f of [...families, ...extra]) family(lines, f);
  lines.push("# EOF", "");
  return lines.join("\n");
}
