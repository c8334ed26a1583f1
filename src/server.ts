import type { Server } from "bun";
import type { ExitInfo } from "./child/stdio.ts";
import { VERSION } from "./cli.ts";
import { type Config, RESERVED_ROOMS } from "./config.ts";
import { passEnvFilter, remoteAddr } from "./env.ts";
import type { Logger } from "./log.ts";
import { type ClientData, closeReason, Room, type RoomContext } from "./room.ts";
import { serveStatic } from "./static.ts";
import { type Counters, createCounters } from "./stats.ts";

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
  const stopping = new Set<Promise<ExitInfo>>();
  const counters = createCounters();
  let nextId = 1;
  let oneshotTaken = false;
  let stopped: Promise<void> | null = null;
  let markFinished = () => {};
  const finished = new Promise<void>((resolve) => {
    markFinished = resolve;
  });

  const onClosed = (room: Room, stop: Promise<ExitInfo>): void => {
    if (rooms.get(room.name) === room) rooms.delete(room.name);
    stopping.add(stop);
    stop.finally(() => stopping.delete(stop));
    if (config.oneshot) void handle.stop();
  };

  const upgrade = (req: Request, url: URL, server: Server<ClientData>): Response | undefined => {
    const path = url.pathname.slice(1);
    const slash = path.indexOf("/");
    const segment = slash === -1 ? path : path.slice(0, slash);
    let name: string;
    try {
      name = decodeURIComponent(segment);
    } catch {
      return text(400, "invalid room name: bad percent-encoding");
    }
    if (name === "") return text(400, "no room: connect to /<room>");
    if (RESERVED_ROOMS.has(name)) return text(400, `room name '${name}' is reserved`);
    if (stopped) return text(503, "server is shutting down");
    if (config.oneshot && oneshotTaken) return text(503, "--oneshot: already serving a client");
    if (nextId > MAX_ID) return text(503, "connection IDs exhausted; restart the server");
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
    if (!server.upgrade(req, { data })) return text(400, "expected a websocket upgrade");
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
        log.info(`client ${conn.id} joined room ${conn.room} from ${remoteAddr(conn)}`);
        let room = rooms.get(conn.room);
        if (room === undefined) {
          try {
            room = new Room(conn.room, ctx, conn);
          } catch (err) {
            counters.spawnFailures++;
            log.withTag(conn.room).error((err as Error).message);
            ws.close(1011, closeReason((err as Error).message));
            if (config.oneshot) void handle.stop();
            return;
          }
          counters.childrenSpawned++;
          rooms.set(conn.room, room);
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

  const ctx: RoomContext = {
    config,
    server,
    log,
    passEnv: passEnvFilter(config.passEnv),
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
        await server.stop(true);
        markFinished();
      })();
      return stopped;
    },
    finished,
  };
  return handle;
}
