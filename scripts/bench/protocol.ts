/**
 * What the orchestrator (scripts/bench/run.ts) asks the load generator (loadgen.ts) to do, and what it answers.
 * One JSON object per line on the load generator's stdin, one result per line on its stdout.
 */

/** Every message the benchmarks send or expect is this many bytes, as the issue asks for the fan-out lines. */
export const MESSAGE_BYTES = 64;

/** Keeps `window` messages in flight on each of `rooms.length` connections, one room each, for a while. */
export interface EchoCommand {
  kind: "echo";
  /** `ws://127.0.0.1:PORT` */
  base: string;
  rooms: string[];
  window: number;
  json: boolean;
  warmupMs: number;
  durationMs: number;
  /** The server process, whose CPU time is read from `/proc/<pid>/stat` around the measured window. */
  pid: number;
  /** Sent as each client's `Origin` header, as a browser would (the access checks' scenario). */
  origin?: string;
  /** Appended to each room's URL (`token=...`). */
  query?: string;
}

/** N clients in one room; the first asks the room to emit `count` numbered lines (broadcast or `_to` each). */
export interface FanoutCommand {
  kind: "fanout";
  url: string;
  clients: number;
  count: number;
  json: boolean;
  /** The lines are `_to` routed round-robin over the clients instead of broadcast. */
  routed: boolean;
  timeoutMs: number;
  pid: number;
}

/** `conns` loops of: connect to a new room, one round trip, disconnect. */
export interface ChurnCommand {
  kind: "churn";
  base: string;
  prefix: string;
  conns: number;
  json: boolean;
  durationMs: number;
  pid: number;
}

/** Server (and children) memory with `clients` idle connections spread over `rooms` rooms. */
export interface MemoryCommand {
  kind: "memory";
  base: string;
  prefix: string;
  clients: number;
  rooms: number;
  settleMs: number;
  pid: number;
}

export type Command = EchoCommand | FanoutCommand | ChurnCommand | MemoryCommand;

/** Something the run saw that means messages were lost, reordered or never answered: a hard failure. */
export type Failure = string;

export interface EchoResult {
  kind: "echo";
  roundTrips: number;
  seconds: number;
  cpuSeconds: number;
  /** Round-trip latencies of the measured window, in microseconds. */
  p50Us: number;
  p99Us: number;
  failures: Failure[];
}

export interface FanoutResult {
  kind: "fanout";
  delivered: number;
  seconds: number;
  cpuSeconds: number;
  /** Clients that received every message in order. */
  complete: number;
  /** Clients the server closed with 1013 for falling behind: reported, not counted as loss. */
  slow: number;
  failures: Failure[];
}

export interface ChurnResult {
  kind: "churn";
  cycles: number;
  seconds: number;
  cpuSeconds: number;
  /** CPU of the children the server reaped meanwhile: each `cat`, the same work under every server. */
  childCpuSeconds: number;
  errors: number;
  failures: Failure[];
}

export interface MemoryResult {
  kind: "memory";
  rssBeforeKiB: number;
  rssAfterKiB: number;
  children: number;
  childrenRssKiB: number;
  failures: Failure[];
}

export type Result = EchoResult | FanoutResult | ChurnResult | MemoryResult;

/** The start message for a room's emitter: the fan-out child (fanout.sh) and the ceiling both read it. */
export function startMessage(count: number, json: boolean, routed: boolean): string {
  const verb = routed ? "route" : "start";
  return json ? `{"${verb}":${count}}` : `${verb} ${count}`;
}

const PAD = "x".repeat(MESSAGE_BYTES);

/** A numbered message of exactly MESSAGE_BYTES bytes: `00000042 xxx…` or `{"n":42,"p":"xxx…"}`. */
export function numbered(n: number, json: boolean): string {
  if (!json) {
    const head = `${String(n).padStart(8, "0")} `;
    return head + PAD.slice(head.length);
  }
  const head = `{"n":${n},"p":"`;
  return `${head}${PAD.slice(head.length + 2)}"}`;
}

/**
 * The number of a message made by {@link numbered} or by fanout.sh, wherever the server put its own keys
 * (`_from`, `_to`) in front; -1 for anything else (a join message echoed back by `cat`).
 */
export function numberOf(text: string, json: boolean): number {
  if (!json) return text.length === MESSAGE_BYTES ? Number.parseInt(text.slice(0, 8), 10) : -1;
  const at = text.indexOf('"n":');
  if (at === -1) return -1;
  return Number.parseInt(text.slice(at + 4, text.indexOf(",", at)), 10);
}
