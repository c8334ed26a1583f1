/**
 * Why a websocket was refused, at the upgrade (an HTTP status) or once open (a close code, before it joined a
 * room): the `reason` label of `scalesocket_refusals`. Add a reason here and it is rendered, at 0 until it happens.
 */
export const REFUSAL_REASONS = [
  "bad_room_name",
  "reserved_room",
  "room_not_allowed",
  "shutting_down",
  "oneshot_busy",
  "ids_exhausted",
  "not_upgrade",
  "max_rooms",
  "max_clients",
  "max_per_ip",
  "no_tcp_port",
  "crash_backoff",
  "origin",
  "unauthorized",
  "auth_service",
  "bad_subprotocol",
  "directory_unavailable",
  "room_moved",
  "bad_forward",
] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

/** Why an open client was closed by a limit: the `reason` label of `scalesocket_clients_closed`. */
export const CLOSE_REASONS = ["max_buffer", "max_queued", "rate_limit", "max_message"] as const;
export type LimitCloseReason = (typeof CLOSE_REASONS)[number];

/**
 * Server-wide event counts: traffic, children, and what was dropped or refused, and why. Plain fields, bumped
 * on the hot path without allocation; `/metrics` renders them.
 */
export interface Counters {
  connections: number;
  /** Websocket upgrades refused before a room was joined (reserved or disallowed name, too many rooms...). */
  refused: number;
  /** The same refusals, by reason; they add up to `refused`. */
  refusedBy: Record<RefusalReason, number>;
  /** Open clients closed by a limit, by which one (`max_buffer` is also `slowClientsClosed`). */
  closedBy: Record<LimitCloseReason, number>;
  /** Clients closed with 1013 because their outgoing buffer passed `--maxbuffer`. */
  slowClientsClosed: number;
  /** Client messages not written because the child's stdin already held `--maxbuffer` bytes. */
  droppedToChild: number;
  /** Client messages dropped by framing (not a JSON object, or a bad gwsocket header). */
  invalidClientMessages: number;
  /** Child messages longer than `--maxbuffer`, or malformed under gwsocket framing, dropped. */
  oversizeMessages: number;
  childrenSpawned: number;
  spawnFailures: number;
  childrenExitedZero: number;
  childrenExitedNonZero: number;
  childrenKilledBySignal: number;
  /** Client messages written to children, and their bytes. */
  messagesToChild: number;
  bytesToChild: number;
  /** Messages children printed (each counted once, however many clients it reached), and stdout bytes read. */
  messagesFromChild: number;
  bytesFromChild: number;
}

export function createCounters(): Counters {
  return {
    connections: 0,
    refused: 0,
    refusedBy: zeros(REFUSAL_REASONS),
    closedBy: zeros(CLOSE_REASONS),
    slowClientsClosed: 0,
    droppedToChild: 0,
    invalidClientMessages: 0,
    oversizeMessages: 0,
    childrenSpawned: 0,
    spawnFailures: 0,
    childrenExitedZero: 0,
    childrenExitedNonZero: 0,
    childrenKilledBySignal: 0,
    messagesToChild: 0,
    bytesToChild: 0,
    messagesFromChild: 0,
    bytesFromChild: 0,
  };
}

function zeros<K extends string>(keys: readonly K[]): Record<K, number> {
  return Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;
}

/** Counts one refused websocket, in the total and by its reason. */
export function countRefusal(c: Counters, reason: RefusalReason): void {
  c.refused++;
  c.refusedBy[reason]++;
}
