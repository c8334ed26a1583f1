import { CrashBackoff } from "./backoff.ts";
import { MessageCache } from "./cache.ts";
import { pipesAvailable } from "./child/pipes.ts";
import { PortPool } from "./child/ports.ts";
import { Spawner } from "./child/spawner.ts";
import type { Connection } from "./env.ts";
import { MAX_PERSISTED_BUFFERS, MAX_PERSISTED_CACHES, PersistedCaches } from "./persisted.ts";
import { Room, type RoomContext } from "./room.ts";

export { PersistedCaches } from "./persisted.ts";

import { countRefusal, type RefusalReason } from "./stats.ts";

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
   * `--rooms`, access, shutdown, `--oneshot`), so a refusal here is about capacity, never about the request.
   *
   * A cluster directory makes the decision "open here, refuse, or forward" here, and returns a Promise: taking
   * the room's lease (`SET key node NX PX ttl`) is a round trip. Bun lets the fetch handler await before
   * `server.upgrade`, so that await costs no 101 sent too early; a `forward` answer becomes a proxied upgrade.
   * Whatever asynchronous step opening a room needs happens here, and what it takes (the lease) is held until
   * the connection has entered or is gone, so that {@link RoomDirectory.enter} can stay synchronous.
   * `forwarded` is true for a client another node forwarded here: it is never forwarded again.
   */
  admit(name: string, forwarded?: boolean): Admission | Promise<Admission>;
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
  /** `--drain`: from now on no room opens here; the open ones go on. */
  drain(): void;
}

/**
 * The answer at the upgrade: serve the room here, refuse (with the refusal's metrics label), or forward the
 * client to the node that holds the room (its advertised URL).
 */
export type Admission =
  | { kind: "here" }
  | { kind: "refuse"; status: 503; reason: string; label: RefusalReason }
  | { kind: "forward"; node: string };

/** Hears of each room closed, with the stop of its child (settled once the child is gone). */
export type ClosedListener = (room: Room, stop: Promise<unknown>) => void;

/** Why a draining server refuses a new room. */
const DRAINING = "server is draining: no new rooms here (--drain)";

/** Why a websocket, already open, gets no room: its close code and reason. */
export interface Refusal {
  code: 1001 | 1011 | 1013;
  reason: string;
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
  private draining = false;
  private readonly listeners: ClosedListener[] = [];

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
    if (this.draining && !this.open.has(name))
      return { kind: "refuse", status: 503, reason: DRAINING, label: "shutting_down" };
    if (this.full(name))
      return { kind: "refuse", status: 503, reason: this.fullReason(), label: "max_rooms" };
    return { kind: "here" };
  }

  drain(): void {
    this.draining = true;
  }

  /** Adds a listener for rooms closed (a cluster directory releases a room's lease once its child is gone). */
  watch(listener: ClosedListener): void {
    this.listeners.push(listener);
  }

  /** Whether room `name` is open here or has a child still stopping. */
  busy(name: string): boolean {
    if (this.open.has(name)) return true;
    for (const room of this.stoppingRooms.keys()) if (room.name === name) return true;
    return false;
  }

  /**
   * Ends room `name` here from outside (its lease was lost): every client is closed with `code` and `reason`,
   * and the last one's leaving stops the child, as when clients leave on their own.
   */
  evict(name: string, code: number, reason: string): void {
    const room = this.open.get(name);
    if (room === undefined) return;
    for (const ws of [...room.members.values()]) ws.close(code, reason);
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
    if (this.draining) {
      countRefusal(counters, "shutting_down");
      return { code: 1013, reason: DRAINING };
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
    for (const listener of this.listeners) listener(room, stop);
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
