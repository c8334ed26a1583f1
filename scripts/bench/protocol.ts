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

/** A swarm (load/swarm.ts): this generator's share of clients, room-major, from the given source addresses. */
export interface SwarmOpenCommand {
  kind: "swarm-open";
  host: string;
  port: number;
  rooms: string[];
  perRoom: number;
  localAddresses: string[];
}

/** The first client of each room of the swarm sends one line; every client must get its room's. */
export interface SwarmBroadcastCommand {
  kind: "swarm-broadcast";
  timeoutMs: number;
}

/** Every client of the swarm sends `rate` messages/s for `durationMs`; each comes back to its whole room. */
export interface SwarmMixedCommand {
  kind: "swarm-mixed";
  rate: number;
  durationMs: number;
  /** Round trips before this are not timed. */
  warmupMs: number;
  /** How long the deliveries still due after the last send may take before they count as lost. */
  drainMs: number;
}

export interface SwarmCloseCommand {
  kind: "swarm-close";
}

/** `conns` loops open `rooms` new rooms, each client staying once its round trip came back (load/storm.ts). */
export interface StormCommand {
  kind: "storm";
  base: string;
  prefix: string;
  rooms: number;
  conns: number;
}

/** One client times its round trips until a `probe-stop` line arrives (load/probe.ts). */
export interface ProbeCommand {
  kind: "probe";
  url: string;
}

/** Not a command with an answer: read at once, even while a probe runs. */
export interface ProbeStopCommand {
  kind: "probe-stop";
}

/** `rooms` rooms open with one idle client each, then each path fetched `requests` times (load/endpoints.ts). */
export interface EndpointsCommand {
  kind: "endpoints";
  base: string;
  prefix: string;
  rooms: number;
  paths: string[];
  requests: number;
}

export type Command =
  | EchoCommand
  | FanoutCommand
  | ChurnCommand
  | MemoryCommand
  | SwarmOpenCommand
  | SwarmBroadcastCommand
  | SwarmMixedCommand
  | SwarmCloseCommand
  | StormCommand
  | ProbeCommand
  | EndpointsCommand;

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

export interface SwarmOpenResult {
  kind: "swarm-open";
  clients: number;
  /** Until every room's first client had its first round trip (the room's child runs). */
  roomsSeconds: number;
  /** Until every client was connected. */
  seconds: number;
  failures: Failure[];
}

export interface SwarmBroadcastResult {
  kind: "swarm-broadcast";
  delivered: number;
  /** From the first line sent to the last client's line received. */
  seconds: number;
  failures: Failure[];
}

export interface SwarmMixedResult {
  kind: "swarm-mixed";
  sent: number;
  delivered: number;
  seconds: number;
  /** Round trips of each sender's own messages (the room's copy that came back to it): [bucket, count] pairs. */
  histogram: [number, number][];
  maxUs: number;
  samples: number;
  failures: Failure[];
}

export interface SwarmCloseResult {
  kind: "swarm-close";
  failures: Failure[];
}

export interface StormResult {
  kind: "storm";
  rooms: number;
  /** The storm's start and end, ms since the epoch. */
  startAt: number;
  endAt: number;
  failures: Failure[];
}

export interface ProbeResult {
  kind: "probe";
  /** When each round trip ended (ms since the epoch) and how long it took (µs). */
  at: number[];
  us: number[];
  failures: Failure[];
}

export interface EndpointsResult {
  kind: "endpoints";
  paths: { path: string; p50Ms: number; maxMs: number; bytes: number }[];
  failures: Failure[];
}

export type Result =
  | EchoResult
  | FanoutResult
  | ChurnResult
  | MemoryResult
  | SwarmOpenResult
  | SwarmBroadcastResult
  | SwarmMixedResult
  | SwarmCloseResult
  | StormResult
  | ProbeResult
  | EndpointsResult;

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

/** Latency histogram buckets: 1% wide, from 1 µs to about 100 s; the last one holds anything longer. */
export const HISTOGRAM_BUCKETS = 1900;
const LOG_STEP = Math.log(1.01);

/** The bucket of a latency in µs. */
export function histogramBucket(us: number): number {
  return Math.min(HISTOGRAM_BUCKETS - 1, Math.max(0, Math.floor(Math.log(Math.max(1, us)) / LOG_STEP)));
}

/** The p-th percentile (µs, within 1%) of merged [bucket, count] pairs; NaN when there are none. */
export function histogramPercentile(pairs: [number, number][], p: number): number {
  const counts = new Map<number, number>();
  let total = 0;
  for (const [bucket, n] of pairs) {
    counts.set(bucket, (counts.get(bucket) ?? 0) + n);
    total += n;
  }
  if (total === 0) return Number.NaN;
  const rank = Math.min(total - 1, Math.floor((total * p) / 100));
  let seen = 0;
  for (const bucket of [...counts.keys()].sort((a, b) => a - b)) {
    seen += counts.get(bucket) as number;
    if (seen > rank) return Math.exp((bucket + 0.5) * LOG_STEP);
  }
  return Number.NaN;
}
