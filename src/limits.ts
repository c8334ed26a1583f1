import type { Client, ClientData } from "./client.ts";
import { closeReason } from "./client.ts";
import type { Config } from "./config.ts";
import type { Connection } from "./env.ts";
import { hasControls, type Logger, type TaggedLogger } from "./log.ts";
import { type Counters, countRefusal, type RefusalReason } from "./stats.ts";

/**
 * The server's limits on connections and their traffic, in one place, each asked at one fixed point:
 * - the room name, at the upgrade ({@link roomNameProblem});
 * - `--maxclients` and `--maxperip`, at the upgrade and again at `open` ({@link ConnectionLimits});
 * - `--ratelimit`, per client message ({@link TokenBucket});
 * - `--maxqueued`, after a room saw backpressure ({@link QueuedBudget}).
 * `--maxmessage` is the websocket's own `maxPayloadLength`; `--maxrooms` and the crash back-off are the rooms
 * registry's (rooms.ts, backoff.ts).
 */

/** What a websocket carries besides {@link ClientData}: its rate-limit bucket, when `--ratelimit` is set. */
export interface LimitedData extends ClientData {
  bucket: TokenBucket | null;
}

export type LimitedClient = Client & { data: LimitedData };

/** The most bytes a room name may have: a file name's limit, and far more than a name a person types. */
export const MAX_ROOM_NAME_BYTES = 255;

/**
 * Why `name` (percent-decoded) cannot be a room, or null when it can. A room name reaches the child as `ROOM`,
 * the log and the metrics, and scripts often use it as a file name: no path separators, no dot names, no
 * control characters, and a bounded length.
 */
export function roomNameProblem(name: string): string | null {
  if (name.length > MAX_ROOM_NAME_BYTES || Buffer.byteLength(name) > MAX_ROOM_NAME_BYTES)
    return `invalid room name: longer than ${MAX_ROOM_NAME_BYTES} bytes`;
  if (hasControls(name)) return "invalid room name: control characters are not allowed";
  if (name.includes("/") || name.includes("\\")) return "invalid room name: '/' and '\\' are not allowed";
  if (name === "." || name === "..") return `invalid room name: '${name}' is not allowed`;
  return null;
}

/** A refusal at the upgrade: the HTTP status, the reason for the body and the log, and its metrics label. */
export interface LimitRefusal {
  status: number;
  reason: string;
  label: RefusalReason;
}

/**
 * `--maxclients` and `--maxperip`: open websockets, in all and by client IP. The upgrade asks {@link admit}, which
 * refuses with an HTTP status; connections are counted at `open` and `close`, and {@link opened} refuses (1013)
 * the few that several upgrades of one moment let past the first check.
 */
export class ConnectionLimits {
  private open = 0;
  private readonly byIp = new Map<string, number>();
  private idle: (() => void) | null = null;

  constructor(
    private readonly config: Pick<Config, "maxClients" | "maxPerIp" | "rateLimit">,
    private readonly counters: Counters,
  ) {}

  /** Open websockets now. */
  get clients(): number {
    return this.open;
  }

  /** At the upgrade: may one more websocket from `ip` open? */
  admit(ip: string): LimitRefusal | null {
    const { maxClients, maxPerIp } = this.config;
    if (maxClients !== null && this.open >= maxClients)
      return { status: 503, reason: this.clientsReason(), label: "max_clients" };
    if (maxPerIp !== null && (this.byIp.get(ip) ?? 0) >= maxPerIp)
      return { status: 429, reason: this.perIpReason(), label: "max_per_ip" };
    return null;
  }

  /** At `open`: counts the websocket; the reason to close it (1013) when it is one too many, else null. */
  opened(conn: Connection): string | null {
    this.open++;
    const { maxClients, maxPerIp } = this.config;
    if (maxPerIp !== null) {
      const n = (this.byIp.get(conn.remoteIp) ?? 0) + 1;
      this.byIp.set(conn.remoteIp, n);
      if (maxPerIp !== null && n > maxPerIp) {
        countRefusal(this.counters, "max_per_ip");
        return this.perIpReason();
      }
    }
    if (maxClients !== null && this.open > maxClients) {
      countRefusal(this.counters, "max_clients");
      return this.clientsReason();
    }
    return null;
  }

  /** At `close`, for every websocket {@link opened} counted. */
  closed(conn: Connection): void {
    this.open--;
    const n = this.byIp.get(conn.remoteIp);
    if (n !== undefined) {
      if (n <= 1) this.byIp.delete(conn.remoteIp);
      else this.byIp.set(conn.remoteIp, n - 1);
    }
    if (this.open === 0) this.idle?.();
  }

  /** A fresh `--ratelimit` bucket for a new client, or null without the flag. */
  bucket(): TokenBucket | null {
    return this.config.rateLimit === null ? null : new TokenBucket(this.config.rateLimit);
  }

  /** Resolves once no websocket is open, or after `ms`: shutdown lets close frames reach their clients. */
  async drained(ms: number): Promise<void> {
    if (this.open === 0) return;
    let timer: Timer | undefined;
    await new Promise<void>((resolve) => {
      this.idle = resolve;
      timer = setTimeout(resolve, ms);
    });
    clearTimeout(timer);
    this.idle = null;
  }

  private clientsReason(): string {
    return `too many clients: at most ${this.config.maxClients} (--maxclients)`;
  }

  private perIpReason(): string {
    return `too many connections from one address: at most ${this.config.maxPerIp} (--maxperip)`;
  }
}

/**
 * `--ratelimit N`: a token bucket holding 2N tokens, refilled at N per second, one token per message. A client
 * that keeps within N messages a second never runs dry; a burst of up to 2N is let through.
 */
export class TokenBucket {
  private tokens: number;
  private last = performance.now();
  private readonly perMs: number;
  private readonly capacity: number;
  /** Set once the client was closed for it, so the messages already on their way close it only once. */
  spent = false;

  constructor(readonly rate: number) {
    this.capacity = 2 * rate;
    this.tokens = this.capacity;
    this.perMs = rate / 1000;
  }

  /** Takes a token for one message at time `now`; false when there is none. */
  take(now = performance.now()): boolean {
    this.tokens = Math.min(this.capacity, this.tokens + (now - this.last) * this.perMs);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** Closes a client that sent past its `--ratelimit` (1008), once. */
export function closeRateLimited(ws: LimitedClient, counters: Counters, log: Logger): void {
  const bucket = ws.data.bucket;
  if (bucket === null || bucket.spent) return;
  bucket.spent = true;
  counters.closedBy.rate_limit++;
  log.warn(`closing client ${ws.data.conn.id}: more than ${bucket.rate} messages per second (--ratelimit)`);
  ws.close(1008, closeReason(`rate limit: more than ${bucket.rate} messages per second (--ratelimit)`));
}

/**
 * `--maxqueued`: what all clients together have queued and not yet sent. Each client's share is what Bun reported
 * (`getBufferedAmount`) the last time it was looked at: by its room's slow-client sweep, which runs only after a
 * publish reported backpressure, and at its `drain`. Clients with nothing queued are not held here, so a server
 * whose clients keep up does no work for it.
 */
export class QueuedBudget {
  private readonly queued = new Map<Client, number>();
  private total = 0;

  constructor(
    readonly max: number,
    private readonly shed: (ws: Client, bytes: number) => void,
  ) {}

  /** Bytes queued for all clients, as last seen. */
  get bytes(): number {
    return this.total;
  }

  /** Records that `ws` has `bytes` queued now. */
  note(ws: Client, bytes: number): void {
    const before = this.queued.get(ws);
    if (before === undefined) {
      if (bytes === 0) return;
      this.queued.set(ws, bytes);
      this.total += bytes;
      return;
    }
    this.total += bytes - before;
    if (bytes === 0) this.queued.delete(ws);
    else this.queued.set(ws, bytes);
  }

  /** The client is gone; what it had queued is freed. */
  forget(ws: Client): void {
    this.note(ws, 0);
  }

  /**
   * Past the budget, closes the clients with the most queued first until the rest fit. A client already being
   * closed (for `--maxbuffer`, or here before) still counts until it is gone, but is not closed again.
   */
  enforce(): void {
    if (this.total <= this.max) return;
    const worst = [...this.queued].filter(([ws]) => !ws.data.slow).sort((a, b) => b[1] - a[1]);
    let left = this.total;
    for (const [ws, bytes] of worst) {
      if (left <= this.max) break;
      left -= bytes;
      ws.data.slow = true;
      this.shed(ws, bytes);
    }
  }
}

/** The `--maxqueued` budget of a server: a shed client is closed 1013 and counted. */
export function queuedBudget(
  config: Pick<Config, "maxQueued">,
  counters: Counters,
  log: Logger,
): QueuedBudget {
  return new QueuedBudget(config.maxQueued, (ws, bytes) => {
    counters.closedBy.max_queued++;
    log.warn(
      `closing client ${ws.data.conn.id} (${bytes} bytes queued): more than ${config.maxQueued} bytes queued for all clients (--maxqueued)`,
    );
    ws.close(1013, closeReason(`server too busy: more than ${config.maxQueued} bytes queued (--maxqueued)`));
  });
}

/**
 * A room's slow-client sweep, after one of its publishes reported backpressure: closes the clients whose outgoing
 * buffer passed `--maxbuffer` (1013), and tells the `--maxqueued` budget what each has queued, which closes the
 * most behind server-wide when all together have too much. Bun's own `backpressureLimit` (twice the cap, set by
 * the server) stays as a hard backstop that closes without a reason.
 */
export function sweepQueued(
  members: Iterable<Client>,
  ctx: { config: Pick<Config, "maxBuffer">; counters: Counters; queued: QueuedBudget },
  log: TaggedLogger,
): void {
  const { config, counters, queued } = ctx;
  const cap = config.maxBuffer;
  for (const ws of members) {
    const bytes = ws.getBufferedAmount();
    queued.note(ws, bytes);
    if (ws.data.slow || bytes <= cap) continue;
    ws.data.slow = true;
    counters.slowClientsClosed++;
    counters.closedBy.max_buffer++;
    log.warn(`closing client ${ws.data.conn.id}: more than ${cap} bytes waiting to be sent`);
    ws.close(1013, closeReason(`client too slow: more than ${cap} bytes queued`));
  }
  queued.enforce();
}
