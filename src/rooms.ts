import { CrashBackoff } from "./backoff.ts";
import { MessageCache } from "./cache.ts";
import { pipesAvailable } from "./child/pipes.ts";
import { PortPool } from "./child/ports.ts";
import { Spawner } from "./child/spawner.ts";
import type { Connection } from "./env.ts";
import { Room, type RoomContext } from "./room.ts";
import { countRefusal } from "./stats.ts";

/**
 * The rooms of a server: where a connection's room is decided, opened, found and closed. The server asks it twice
 * per connection, each time at a fixed point of the websocket's life:
 *
 * 1. {@link RoomDirectory.admit} at the upgrade, before the 101: may this room be served here at all?
 * 2. {@link RoomDirectory.enter} in the websocket's `open`: the room to join, opened if it is not.
 *
 * `RoomRegistry` is the single-node directory. A cluster directory (a Redis lease per room) implements the same
 * contract; what it changes is said at each member.
 */
export interface RoomDirectory {
  /** The rooms open on this node, by name. Live: it changes as rooms open and close. */
  readonly rooms: ReadonlyMap<string, Room>;
  /**
   * Rooms closed whose child is still being stopped. Counted against `--maxrooms`, since their children are
   * alive, and {@link RoomDirectory.shutdown} waits for them. A cluster directory keeps a room's lease until
   * its child is gone, so that a room's name never has live children on two nodes.
   */
  readonly stopping: number;
  /**
   * Whether a websocket for room `name` may be upgraded here. Called after the upgrade's own checks (the name,
   * `--rooms`, shutdown, `--oneshot`), so a refusal here is about capacity, never about the request.
   *
   * A cluster directory makes the decision "open here, refuse, or forward" here, and returns a Promise: taking
   * the room's lease (`SET key node NX PX ttl`) is a round trip. Bun lets the fetch handler await before
   * `server.upgrade`, so that await costs no 101 sent too early; a `forward` answer becomes the HTTP response
   * (a redirect or a proxied upgrade) instead of an upgrade. Whatever asynchronous step opening a room needs must
   * happen here, and what it takes (the lease) must be held until the connection has entered or is gone, so that
   * {@link RoomDirectory.enter} can stay synchronous.
   */
  admit(name: string): Admission;
  /**
   * The room `conn` joins, in the websocket's `open`: the open one, or one opened now with `conn` as its opener
   * (its environment is the child's). Or why not, as a close code and reason: 1013 when no room may open now
   * (`--maxrooms` reached since the upgrade was admitted, no free port, the room's child keeps crashing and its
   * back-off runs), 1011 when the child could not be started, 1001 when the server is shutting down.
   *
   * Synchronous, and it must stay so in every directory: the client may send as soon as it is open, and a room
   * opened later would have to hold those messages. The caller joins the socket to the room in the same turn.
   */
  enter(conn: Connection): Room | Refusal;
  /**
   * Ends every room (its clients get 1001, its child is stopped) and waits until every child, including those
   * of rooms closed earlier and still stopping, is gone. A cluster directory also releases its leases here.
   */
  shutdown(): Promise<void>;
}

/** The answer at the upgrade. A cluster directory adds `{ kind: "forward"; node: string }`. */
export type Admission = { kind: "here" } | { kind: "refuse"; status: 503; reason: string };

/** Why a websocket, already open, gets no room: its close code and reason. */
export interface Refusal {
  code: 1001 | 1011 | 1013;
  reason: string;
}

/**
 * With `--cachepersist`, caches of closed rooms are kept, at most this many and at most this many times
 * `--maxbuffer` in all (the least recently closed go first), so a stream of one-off room names cannot grow
 * memory without bound.
 */
export const MAX_PERSISTED_CACHES = 10_000;
export const MAX_PERSISTED_BUFFERS = 16;

/** Caches of closed rooms, kept for their next opening; bounded in count and bytes, least recently kept first out. */
export class PersistedCaches {
  /** In the order kept: a Map iterates in insertion order, so the first entry is the least recently closed. */
  private readonly kept = new Map<string, MessageCache>();
  private total = 0;

  constructor(
    readonly maxCaches: number,
    readonly maxBytes: number,
  ) {}

  get size(): number {
    return this.kept.size;
  }

  /** What the kept caches hold, in bytes (as {@link MessageCache.bytes} counts). */
  get bytes(): number {
    return this.total;
  }

  /** Keeps `cache` as the room's, the most recently closed; the least recently closed go past the bounds. */
  keep(name: string, cache: MessageCache): void {
    this.take(name);
    this.kept.set(name, cache);
    this.total += cache.bytes;
    while (this.kept.size > this.maxCaches || this.total > this.maxBytes) {
      const [oldest, dropped] = this.kept.entries().next().value as [string, MessageCache];
      this.kept.delete(oldest);
      this.total -= dropped.bytes;
    }
  }

  /** The room's kept cache, no longer kept here; undefined when there is none. */
  take(name: string): MessageCache | undefined {
    const cache = this.kept.get(name);
    if (cache === undefined) return undefined;
    this.kept.delete(name);
    this.total -= cache.bytes;
    return cache;
  }
}

/**
 * The single-node {@link RoomDirectory}: the rooms map, `--maxrooms`, the `--tcp` port pool, the persisted
 * caches (`--cachepersist`), the children still being stopped, and the spawner thread the rooms start children on.
 */
export class RoomRegistry implements RoomDirectory {
  private readonly open = new Map<string, Room>();
  /** Children still being stopped after their room closed, by room; shutdown waits for them. */
  private readonly stoppingRooms = new Map<Room, Promise<unknown>>();
  private readonly persisted: PersistedCaches;
  private readonly ports: PortPool | null;
  private readonly spawner: Spawner | null;
  private readonly backoff: CrashBackoff;
  private readonly ctx: RoomContext;
  private shuttingDown: Promise<void> | null = null;

  /**
   * `base` is what every room gets from the server; the registry adds `onClosed` and the spawner. `onRoomClosed`
   * hears of each room closed, after the registry forgot it (`--oneshot` ends the server there).
   */
  constructor(
    private readonly base: Omit<RoomContext, "onClosed" | "spawner">,
    private readonly onRoomClosed: (room: Room) => void = () => {},
  ) {
    const { config, log } = base;
    this.ports = config.tcp ? new PortPool(...config.tcpPorts) : null;
    this.persisted = new PersistedCaches(MAX_PERSISTED_CACHES, MAX_PERSISTED_BUFFERS * config.maxBuffer);
    this.backoff = new CrashBackoff(config.crashBackoff);
    // Children are started on a thread of their own, so a room that opens does not hold the others' traffic.
    this.spawner =
      config.osPipes && pipesAvailable()
        ? new Spawner((err) =>
            log.error(`spawner thread failed (${err.message}); starting children on the main thread`),
          )
        : null;
    this.ctx = { ...base, spawner: this.spawner, onClosed: this.closed };
  }

  get rooms(): ReadonlyMap<string, Room> {
    return this.open;
  }

  get stopping(): number {
    return this.stoppingRooms.size;
  }

  admit(name: string): Admission {
    if (this.full(name)) return { kind: "refuse", status: 503, reason: this.fullReason() };
    return { kind: "here" };
  }

  enter(conn: Connection): Room | Refusal {
    return this.open.get(conn.room) ?? this.openRoom(conn);
  }

  shutdown(): Promise<void> {
    this.shuttingDown ??= (async () => {
      const exits = [...this.open.values()].map((room) => room.shutdown());
      this.open.clear();
      await Promise.allSettled([...exits, ...this.stoppingRooms.values()]);
      this.spawner?.close();
    })();
    return this.shuttingDown;
  }

  private openRoom(conn: Connection): Room | Refusal {
    const { config, counters, log } = this.base;
    if (this.shuttingDown) {
      countRefusal(counters, "shutting_down");
      return { code: 1001, reason: "server is shutting down" };
    }
    // Checked again here: several upgrades for new rooms may have been admitted before any of them opened.
    if (this.full(conn.room)) {
      countRefusal(counters, "max_rooms");
      return { code: 1013, reason: this.fullReason() };
    }
    const wait = this.backoff.remaining(conn.room);
    if (wait > 0) {
      countRefusal(counters, "crash_backoff");
      return {
        code: 1013,
        reason: `${config.cmd} keeps exiting at start in this room: retry in ${Math.ceil(wait / 1000)} s`,
      };
    }
    const port = this.ports === null ? null : this.ports.takeFree();
    if (this.ports !== null && port === null) {
      countRefusal(counters, "no_tcp_port");
      const range = config.tcpPorts.join(":");
      log.warn(`room ${conn.room} refused: no free port in --tcpports ${range}`);
      return { code: 1013, reason: `no free TCP port for a new room (--tcpports ${range})` };
    }
    const cache = this.takeCache(conn.room);
    let room: Room;
    try {
      room = new Room(conn.room, this.ctx, conn, cache, port);
    } catch (err) {
      if (port !== null) this.ports?.give(port);
      this.keepCache(conn.room, cache);
      counters.spawnFailures++;
      log.error({ message: (err as Error).message, tag: conn.room });
      this.startBackoff(conn.room, 0);
      return { code: 1011, reason: (err as Error).message };
    }
    this.open.set(conn.room, room);
    return room;
  }

  /** `RoomContext.onClosed`: the room takes no more clients; its child may still be stopping. */
  private readonly closed = (room: Room, stop: Promise<unknown>): void => {
    if (this.open.get(room.name) === room) this.open.delete(room.name);
    // A port goes back to the pool only once its child is gone, so it is never handed to two live children.
    const port = room.tcpPort;
    if (port !== null) stop.finally(() => this.ports?.give(port));
    this.keepCache(room.name, room.cache);
    this.startBackoff(room.name, room.endedAfterMs);
    this.stoppingRooms.set(room, stop);
    stop.finally(() => this.stoppingRooms.delete(room));
    this.onRoomClosed(room);
  };

  /**
   * Rooms still being stopped are counted: their children are alive, and `--maxrooms` bounds live children. A
   * closed room's name is free for a new room at once, within the limit.
   */
  private full(name: string): boolean {
    const max = this.base.config.maxRooms;
    return max !== null && this.open.size + this.stoppingRooms.size >= max && !this.open.has(name);
  }

  /** Tells the back-off how room `name` ended (see {@link CrashBackoff.ended}); logs a back-off that starts. */
  private startBackoff(name: string, ranMs: number | null): void {
    const waitMs = this.backoff.ended(name, ranMs);
    if (waitMs === 0) return;
    const { config, log } = this.base;
    log.warn({
      message: `${config.cmd} ended within ${config.crashBackoff.windowMs} ms of its start ${config.crashBackoff.streak} or more times in a row: the room is refused for ${waitMs / 1000} s`,
      tag: name,
    });
  }

  private fullReason(): string {
    return `too many rooms: at most ${this.base.config.maxRooms} (--maxrooms)`;
  }

  private takeCache(name: string): MessageCache | null {
    const { cache, maxBuffer } = this.base.config;
    if (cache === null) return null;
    return this.persisted.take(name) ?? new MessageCache(cache.size, maxBuffer);
  }

  private keepCache(name: string, cache: MessageCache | null): void {
    if (this.base.config.cachePersist && cache !== null && cache.length > 0) this.persisted.keep(name, cache);
  }
}
