/**
 * A swarm: this load generator's share of thousands of clients, each room wholly in one generator so that every
 * check (loss, order) stays local. Several generators run side by side, each its own process; the orchestrator
 * (scale.ts) drives them in phases: open, then a broadcast per room or mixed traffic, then close. The swarm lives
 * between the commands.
 *
 * Messages are 64 bytes: `b<room>` for a room's broadcast line, `m<sender> <seq>` for mixed traffic, where the
 * sender is its position in the room. `cat` sends each line back to the whole room, as the ceiling does.
 */
import type {
  SwarmBroadcastCommand,
  SwarmBroadcastResult,
  SwarmCloseResult,
  SwarmMixedCommand,
  SwarmMixedResult,
  SwarmOpenCommand,
  SwarmOpenResult,
} from "../protocol.ts";
import { HISTOGRAM_BUCKETS, histogramBucket, MESSAGE_BYTES } from "../protocol.ts";
import { connectRaw, type RawClient } from "./rawws.ts";

/** Connections opening at once in one generator: several generators run, and the listen backlog is shared. */
const OPEN_BATCH = 32;
const OPEN_TIMEOUT_MS = 15_000;
/** Send times kept per client: a reply older than this many of its own messages would be misattributed. */
const RING = 64;
const TICK_MS = 10;

const PAD = "x".repeat(MESSAGE_BYTES);
const pad = (head: string) => head + PAD.slice(head.length);
const digits = (b: Uint8Array, from: number, to: number) => {
  let n = 0;
  for (let i = from; i < to; i++) n = n * 10 + ((b[i] as number) - 48);
  return n;
};

type Mode = "opening" | "idle" | "broadcast" | "mixed";

interface Swarm {
  clients: RawClient[];
  perRoom: number;
  rooms: number;
  mode: Mode;
  /** Opening: the first client of each room waiting for its round trip, by client. */
  ready: Map<number, () => void>;
  /** Broadcast: whether each client got its room's line. */
  got: Uint8Array;
  gotCount: number;
  onAllGot: () => void;
  /** Mixed: per receiver, the next sequence number expected from each sender of its room. */
  expect: Int32Array;
  sent: Int32Array;
  sentAt: Float64Array;
  delivered: number;
  measuring: boolean;
  /** Round trips by log bucket (protocol.ts), so that the generators' distributions can be merged exactly. */
  histogram: Uint32Array;
  nSamples: number;
  maxUs: number;
  onDelivery: () => void;
  closedEarly: number;
  failures: string[];
}

let swarm: Swarm | null = null;

function fail(s: Swarm, msg: string): void {
  if (s.failures.length < 5) s.failures.push(msg);
}

function onMessage(s: Swarm, c: number, b: Uint8Array): void {
  const room = Math.floor(c / s.perRoom);
  if (s.mode === "opening") {
    const ready = s.ready.get(c);
    if (b[0] !== 119 || ready === undefined || digits(b, 1, 7) !== c)
      fail(s, `client ${c}: unexpected message while opening`);
    else {
      s.ready.delete(c);
      ready();
    }
    return;
  }
  if (s.mode === "broadcast") {
    if (b.length !== MESSAGE_BYTES || b[0] !== 98 || digits(b, 1, 7) !== room || s.got[c] === 1) {
      fail(
        s,
        `client ${c} (room ${room}): unexpected broadcast ${new TextDecoder().decode(b.subarray(0, 16))}`,
      );
      return;
    }
    s.got[c] = 1;
    if (++s.gotCount === s.clients.length) s.onAllGot();
    return;
  }
  if (s.mode !== "mixed" || b.length !== MESSAGE_BYTES || b[0] !== 109) {
    fail(s, `client ${c}: unexpected message in ${s.mode} mode`);
    return;
  }
  const from = digits(b, 1, 4);
  const seq = digits(b, 5, 13);
  const slot = c * s.perRoom + from;
  if (from >= s.perRoom || seq !== s.expect[slot]) {
    fail(s, `client ${c}: from ${from} expected ${s.expect[slot]}, got ${seq} (lost or reordered)`);
    s.expect[slot] = seq + 1;
  } else s.expect[slot] = seq + 1;
  s.delivered++;
  const sender = room * s.perRoom + from;
  if (sender === c && s.measuring) {
    const us = (performance.now() - (s.sentAt[c * RING + (seq % RING)] as number)) * 1000;
    (s.histogram[histogramBucket(us)] as number)++;
    s.nSamples++;
    if (us > s.maxUs) s.maxUs = us;
  }
  s.onDelivery();
}

/** Opens `rooms × perRoom` clients, room-major, each from the next of `localAddresses` in turn. */
export async function swarmOpen(cmd: SwarmOpenCommand): Promise<SwarmOpenResult> {
  if (swarm !== null) throw new Error("a swarm is already open in this load generator");
  const n = cmd.rooms.length * cmd.perRoom;
  const s: Swarm = {
    clients: new Array<RawClient>(n),
    perRoom: cmd.perRoom,
    rooms: cmd.rooms.length,
    mode: "idle",
    ready: new Map(),
    got: new Uint8Array(n),
    gotCount: 0,
    onAllGot: () => {},
    expect: new Int32Array(n * cmd.perRoom),
    sent: new Int32Array(n),
    sentAt: new Float64Array(n * RING),
    delivered: 0,
    measuring: false,
    histogram: new Uint32Array(HISTOGRAM_BUCKETS),
    nSamples: 0,
    maxUs: 0,
    onDelivery: () => {},
    closedEarly: 0,
    failures: [],
  };
  swarm = s;
  const t0 = performance.now();
  const connect = (c: number, k: number) => {
    const room = cmd.rooms[Math.floor(c / cmd.perRoom)] as string;
    const from = cmd.localAddresses[k % cmd.localAddresses.length] as string;
    return connectRaw(
      cmd.host,
      cmd.port,
      `/${room}`,
      from,
      {
        message: (b) => onMessage(s, c, b),
        close: (code) => {
          if (s.mode === "idle" && s.clients.length === 0) return;
          s.closedEarly++;
          fail(s, `client ${c} (${room}) closed by the server (${code})`);
        },
      },
      OPEN_TIMEOUT_MS,
    ).then((client) => {
      s.clients[c] = client;
    });
  };
  // First one client per room, each waiting for a round trip (its room's child runs), then the rest: a server
  // whose children start more slowly than its clients arrive holds every waiting room's pipes meanwhile, and
  // with 15,000 sockets that alone can pass the open-files limit (docs/performance.md).
  s.mode = "opening";
  const firsts = Array.from({ length: cmd.rooms.length }, (_, r) => r * cmd.perRoom);
  for (let i = 0; i < firsts.length; i += OPEN_BATCH) {
    await Promise.all(
      firsts.slice(i, i + OPEN_BATCH).map(async (c, j) => {
        await connect(c, i + j);
        const ready = new Promise<void>((resolve) => s.ready.set(c, resolve));
        s.clients[c]?.send(pad(`w${String(c).padStart(6, "0")} `));
        await Promise.race([ready, Bun.sleep(OPEN_TIMEOUT_MS)]);
        if (s.ready.delete(c)) fail(s, `client ${c}: no round trip within ${OPEN_TIMEOUT_MS} ms`);
      }),
    );
  }
  s.mode = "idle";
  const roomsSeconds = (performance.now() - t0) / 1000;
  const rest = Array.from({ length: n }, (_, c) => c).filter((c) => c % cmd.perRoom !== 0);
  for (let i = 0; i < rest.length; i += OPEN_BATCH) {
    await Promise.all(rest.slice(i, i + OPEN_BATCH).map((c, j) => connect(c, firsts.length + i + j)));
  }
  return {
    kind: "swarm-open",
    clients: n,
    roomsSeconds,
    seconds: (performance.now() - t0) / 1000,
    failures: take(s),
  };
}

/** The failures seen since the last phase's answer: each is reported once. */
function take(s: Swarm): string[] {
  const out = s.failures;
  s.failures = [];
  return out;
}

function current(): Swarm {
  if (swarm === null) throw new Error("no swarm open in this load generator");
  return swarm;
}

/** One line per room from its first client; resolves when every client got its room's line (or the time is up). */
export async function swarmBroadcast(cmd: SwarmBroadcastCommand): Promise<SwarmBroadcastResult> {
  const s = current();
  s.mode = "broadcast";
  s.got.fill(0);
  s.gotCount = 0;
  const all = new Promise<void>((resolve) => {
    s.onAllGot = resolve;
  });
  const t0 = performance.now();
  for (let r = 0; r < s.rooms; r++) s.clients[r * s.perRoom]?.send(pad(`b${String(r).padStart(6, "0")} `));
  let timer: Timer | undefined;
  const done = await Promise.race([
    all.then(() => true),
    new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), cmd.timeoutMs);
    }),
  ]).finally(() => clearTimeout(timer));
  const seconds = (performance.now() - t0) / 1000;
  if (!done)
    fail(s, `${s.clients.length - s.gotCount} of ${s.clients.length} clients never got their room's line`);
  s.mode = "idle";
  return { kind: "swarm-broadcast", delivered: s.gotCount, seconds, failures: take(s) };
}

/** Every client sends `rate` messages/s for `durationMs` (latency kept after `warmupMs`), then all are awaited. */
export async function swarmMixed(cmd: SwarmMixedCommand): Promise<SwarmMixedResult> {
  const s = current();
  const n = s.clients.length;
  s.mode = "mixed";
  s.expect.fill(0);
  s.sent.fill(0);
  s.delivered = 0;
  s.histogram.fill(0);
  s.nSamples = 0;
  s.maxUs = 0;
  let totalSent = 0;
  let cursor = 0;
  const t0 = performance.now();
  const sendDue = () => {
    const due = Math.min(
      Math.floor(((performance.now() - t0) / 1000) * cmd.rate * n),
      Math.floor((cmd.durationMs / 1000) * cmd.rate * n),
    );
    for (; totalSent < due; totalSent++) {
      const c = cursor;
      cursor = (cursor + 1) % n;
      const seq = s.sent[c] as number;
      const from = c % s.perRoom;
      s.sentAt[c * RING + (seq % RING)] = performance.now();
      s.clients[c]?.send(pad(`m${String(from).padStart(3, "0")} ${String(seq).padStart(8, "0")} `));
      s.sent[c] = seq + 1;
    }
  };
  const ticker = setInterval(sendDue, TICK_MS);
  const warm = setTimeout(() => {
    s.measuring = true;
  }, cmd.warmupMs);
  await Bun.sleep(cmd.durationMs);
  clearInterval(ticker);
  clearTimeout(warm);
  sendDue();
  const sendSeconds = (performance.now() - t0) / 1000;
  const expected = totalSent * s.perRoom;
  if (s.delivered < expected) {
    const drained = new Promise<void>((resolve) => {
      s.onDelivery = () => {
        if (s.delivered >= expected) resolve();
      };
    });
    await Promise.race([drained, Bun.sleep(cmd.drainMs)]);
  }
  s.onDelivery = () => {};
  s.measuring = false;
  s.mode = "idle";
  if (s.delivered < expected)
    fail(
      s,
      `${expected - s.delivered} of ${expected} deliveries missing ${cmd.drainMs} ms after the last send`,
    );
  const histogram: [number, number][] = [];
  s.histogram.forEach((count, bucket) => {
    if (count > 0) histogram.push([bucket, count]);
  });
  return {
    kind: "swarm-mixed",
    sent: totalSent,
    delivered: s.delivered,
    seconds: sendSeconds,
    histogram,
    maxUs: s.maxUs,
    samples: s.nSamples,
    failures: take(s),
  };
}

/** Closes every client of the swarm (bounded) and forgets it. */
export async function swarmClose(): Promise<SwarmCloseResult> {
  const s = swarm;
  swarm = null;
  if (s === null) return { kind: "swarm-close", failures: [] };
  const failures = take(s);
  const clients = s.clients;
  s.clients = [];
  for (const c of clients) c?.close();
  // The server closes its ends in reply; give it a moment so the next phase starts from a quiet server.
  await Bun.sleep(200);
  return { kind: "swarm-close", failures };
}
