/**
 * Server-wide event counts: traffic, children, and what was dropped or refused, and why. Plain fields, bumped
 * on the hot path without allocation; `/metrics` renders them.
 */
export interface Counters {
  connections: number;
  /** Websocket upgrades refused before a room was joined (reserved or disallowed name, too many rooms...). */
  refused: number;
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
