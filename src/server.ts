import type { Server } from "bun";
import picomatch from "picomatch";
import { answerApi, type RoomInfo } from "./api.ts";
import { MessageCache } from "./cache.ts";
import { pipesAvailable } from "./child/pipes.ts";
import { PortPool } from "./child/ports.ts";
import { Spawner } from "./child/spawner.ts";
import { type Config, RESERVED_ROOMS } from "./config.ts";
import { passEnvFilter, passedEnv, remoteAddr } from "./env.ts";
import type { Logger } from "./log.ts";
import { CONTENT_TYPE, renderMetrics } from "./metrics.ts";
import { type ClientData, closeReason, Room, type RoomContext } from "./room.ts";
import { serveStatic } from "./static.ts";
import { type Counters, createCounters } from "./stats.ts";
import { VERSION } from "./version.ts";

export interface RunningServer {
  readonly hostname: string;
  readonly port: number;
  readonly counters: Counters;
  readonly rooms: ReadonlyMap<string, Room>;
  /** Stops accepting, closes every client, stops every child (SIGTERM, then SIGKILL after the grace period). */
  stop(): Promise<void>;
  /** Settles once the server has stopped: after `stop()`, or when a `--oneshot` client is done. */
  readonly finished: Promise<void>;
}

const MAX_ID = 0xffff_ffff;

/**
 * With `--cachepersist`, caches of closed rooms are kept, at most this many and at most this many times
 * `--maxbuffer` in all (the least recently closed go first), so a stream of one-off room names cannot grow
 * memory without bound.
 */
const MAX_PERSISTED_CACHES = 10_000;
const MAX_PERSISTED_BUFFERS = 16;

function text(status: number, body: string): Response {
  return new Response(`${body}\n`, { status, headers: { "content-type": "text/plain; charset=utf-8" } });
}

/**
 * Starts the server: HTTP endpoints, the websocket upgrade into rooms, and the rooms' lifecycle. It routes and
 * nothing more: what a room does with its child lives in room.ts.
 */
export function serve(config: Config, log: Logger): RunningServer {
  const rooms = new Map<string, Room>();
  /** Children still being stopped after their room closed; shutdown waits for them. */
  const stopping = new Set<Promise<unknown>>();
  const counters = createCounters();
  const persisted = new Map<string, MessageCache>();
  let persistedBytes = 0;
  const roomAllowed = config.rooms === null ? null : picomatch(config.rooms, { dot: true });
  const ports = config.tcp ? new PortPool(...config.tcpPorts) : null;
  let nextId = 1;
  let oneshotTaken = false;
  let stopped: Promise<void> | null = null;
  let markFinished = () => {};
  const finished = new Promise<void>((resolve) => {
    markFinished = resolve;
  });

  const onClosed = (room: Room, stop: Promise<unknown>): void => {
    if (rooms.get(room.name) === room) rooms.delete(room.name);
    // A port goes back to the pool only once its child is gone, so it is never handed to two live children.
    if (room.tcpPort !== null) stop.finally(() => ports?.give(room.tcpPort as number));
    if (config.cachePersist && room.cache !== null && room.cache.length > 0) keepCache(room.name, room.cache);
    stopping.add(stop);
    stop.finally(() => stopping.delete(stop));
    if (config.oneshot) void handle.stop();
  };

  const refuse = (status: number, why: string): Response => {
    counters.refused++;
    log.debug(`refused a websocket: ${why}`);
    return text(status, why);
  };

  const upgrade = (req: Request, url: URL, server: Server<ClientData>): Response | undefined => {
    const path = url.pathname.slice(1);
    const slash = path.indexOf("/");
    const segment = slash === -1 ? path : path.slice(0, slash);
    let name: string;
    try {
      name = decodeURIComponent(segment);
    } catch {
      return refuse(400, "invalid room name: bad percent-encoding");
    }
    if (name === "") return refuse(400, "no room: connect to /<room>");
    if (RESERVED_ROOMS.has(name)) return refuse(400, `room name '${name}' is reserved`);
    if (roomAllowed !== null && !roomAllowed(name))
      return refuse(400, `room '${name}' is not allowed (--rooms)`);
    if (stopped) return refuse(503, "server is shutting down");
    if (config.oneshot && oneshotTaken) return refuse(503, "--oneshot: already serving a client");
    if (tooManyRooms(name)) return refuse(503, `too many rooms: at most ${config.maxRooms} (--maxrooms)`);
    if (nextId > MAX_ID) return refuse(503, "connection IDs exhausted; restart the server");
    const ip = server.requestIP(req);
    const data: ClientData = {
      conn: {
        id: nextId,
        room: name,
        query: url.search.slice(1),
        remoteIp: ip?.address ?? "",
        remotePort: ip?.port ?? 0,
        pathInfo: slash === -1 ? "" : path.slice(slash),
        scriptName: `/${segment}`,
        // Only a connection that opens a room needs its headers (for the child's HTTP_* variables).
        headers: rooms.has(name) ? new Headers() : req.headers,
      },
      room: null,
      slow: false,
    };
    if (!server.upgrade(req, { data })) return refuse(400, "expected a websocket upgrade");
    nextId++;
    if (config.oneshot) oneshotTaken = true;
    return undefined;
  };

  const server = Bun.serve<ClientData>({
    hostname: config.hostname,
    port: config.port,
    fetch(req, server) {
      const url = new URL(req.url);
      // A websocket is always a room (reserved names are refused there), whatever the path.
      if (req.headers.get("upgrade")?.toLowerCase() === "websocket") return upgrade(req, url, server);
      if (url.pathname === "/health") return Response.json({ status: "ok" });
      if (config.metrics && url.pathname === "/metrics") {
        return new Response(renderMetrics(roomSamples(), counters), {
          headers: { "content-type": CONTENT_TYPE },
        });
      }
      if (config.api && url.pathname.startsWith("/api/")) {
        return answerApi(
          url.pathname.slice("/api/".length),
          (name) => roomInfo(rooms.get(name)),
          () => [...rooms.values()].map((r) => roomInfo(r) as RoomInfo),
        );
      }
      if (config.staticDir !== null) return serveStatic(config.staticDir, req, url.pathname);
      return text(404, "not found");
    },
    error(err) {
      log.error("request failed:", err);
      return text(500, "internal error");
    },
    websocket: {
      // Past twice the cap Bun closes the socket itself; the room's sweep closes it at the cap, with a reason.
      backpressureLimit: config.maxBuffer * 2,
      closeOnBackpressureLimit: true,
      maxPayloadLength: config.maxBuffer,
      open(ws) {
        const { conn } = ws.data;
        counters.connections++;
        log.infoLine(`client ${conn.id} joined room ${conn.room} from ${remoteAddr(conn)}`);
        const room = rooms.get(conn.room) ?? openRoom(conn);
        if (!(room instanceof Room)) {
          ws.close(room.code, closeReason(room.reason));
          if (config.oneshot) void handle.stop();
          return;
        }
        room.join(ws);
      },
      message(ws, message) {
        ws.data.room?.receive(ws, message);
      },
      close(ws, code, reason) {
        log.debug(
          `client ${ws.data.conn.id} left room ${ws.data.conn.room} (${code}${reason ? ` ${reason}` : ""})`,
        );
        ws.data.room?.leave(ws);
      },
    },
  });

  /**
   * Starts a room for `conn`, or says why it cannot: 1013 when none may open now (room limit, no free port),
   * 1011 when its child could not be started.
   */
  function openRoom(conn: ClientData["conn"]): Room | { code: 1011 | 1013; reason: string } {
    // Checked again here: several upgrades for new rooms may have passed the check before any opened.
    if (tooManyRooms(conn.room)) {
      counters.refused++;
      return { code: 1013, reason: `too many rooms: at most ${config.maxRooms} (--maxrooms)` };
    }
    const port = ports === null ? null : ports.takeFree();
    if (ports !== null && port === null) {
      counters.refused++;
      log.warn(`room ${conn.room} refused: no free port in --tcpports ${config.tcpPorts.join(":")}`);
      return {
        code: 1013,
        reason: `no free TCP port for a new room (--tcpports ${config.tcpPorts.join(":")})`,
      };
    }
    const cache = takeCache(conn.room);
    let room: Room;
    try {
      room = new Room(conn.room, ctx, conn, cache, port);
    } catch (err) {
      if (port !== null) ports?.give(port);
      if (config.cachePersist && cache !== null && cache.length > 0) keepCache(conn.room, cache);
      counters.spawnFailures++;
      log.error({ message: (err as Error).message, tag: conn.room });
      return { code: 1011, reason: (err as Error).message };
    }
    rooms.set(conn.room, room);
    return room;
  }

  function tooManyRooms(name: string): boolean {
    return config.maxRooms !== null && rooms.size >= config.maxRooms && !rooms.has(name);
  }

  function takeCache(name: string): MessageCache | null {
    if (config.cache === null) return null;
    const kept = persisted.get(name);
    if (kept === undefined) return new MessageCache(config.cache.size, config.maxBuffer);
    persisted.delete(name);
    persistedBytes -= kept.bytes;
    return kept;
  }

  /** Keeps a closed room's cache for its next opening, dropping the least recently closed past the bounds. */
  function keepCache(name: string, cache: MessageCache): void {
    const previous = persisted.get(name);
    if (previous !== undefined) persistedBytes -= previous.bytes;
    persisted.delete(name);
    persisted.set(name, cache);
    persistedBytes += cache.bytes;
    const maxBytes = MAX_PERSISTED_BUFFERS * config.maxBuffer;
    while (persisted.size > MAX_PERSISTED_CACHES || persistedBytes > maxBytes) {
      const [oldest, dropped] = persisted.entries().next().value as [string, MessageCache];
      persisted.delete(oldest);
      persistedBytes -= dropped.bytes;
    }
  }

  function roomInfo(room: Room | undefined): RoomInfo | undefined {
    return room && { name: room.name, connections: room.members.size, metadata: room.metadata };
  }

  function* roomSamples() {
    for (const r of rooms.values()) {
      yield { name: r.name, connectionsTotal: r.connectionsTotal, connectionsOpen: r.members.size };
    }
  }

  // Rooms' children are started on a thread of their own, so a room that opens does not hold the others' traffic.
  const spawner =
    config.osPipes && pipesAvailable()
      ? new Spawner((err) =>
          log.error(`spawner thread failed (${err.message}); starting children on the main thread`),
        )
      : null;

  const ctx: RoomContext = {
    config,
    spawner,
    server,
    log,
    passedEnv: passedEnv(passEnvFilter(config.passEnv), process.env),
    serverInfo: {
      hostname: config.hostname,
      port: server.port ?? config.port,
      software: `scalesocket/${VERSION}`,
    },
    counters,
    onClosed,
  };

  const handle: RunningServer = {
    hostname: config.hostname,
    port: server.port ?? config.port,
    counters,
    rooms,
    stop() {
      stopped ??= (async () => {
        const exits = [...rooms.values()].map((room) => room.shutdown());
        rooms.clear();
        await Promise.allSettled([...exits, ...stopping]);
        spawner?.close();
        await server.stop(true);
        markFinished();
      })();
      return stopped;
    },
    finished,
  };
  return handle;
}
