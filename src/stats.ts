/**
 * Server-wide event counts that are not visible on the wire: what was dropped or refused, and why.
 * Plain fields, bumped on the hot path without allocation.
 */
export interface Counters {
  connections: number;
  /** Clients closed with 1013 because their outgoing buffer passed `--maxbuffer`. */
  slowClientsClosed: number;
  /** Client messages not written because the child's stdin already held `--maxbuffer` bytes. */
  droppedToChild: number;
  /** Client messages dropped by JSON framing (not a JSON object). */
  invalidClientMessages: number;
  /** Child messages longer than `--maxbuffer`, dropped whole. */
  oversizeMessages: number;
  childrenSpawned: number;
  spawnFailures: number;
}

export function createCounters(): Counters {
  return {
    connections: 0,
    slowClientsClosed: 0,
    droppedToChild: 0,
    invalidClientMessages: 0,
    oversizeMessages: 0,
    childrenSpawned: 0,
    spawnFailures: 0,
  };
}
