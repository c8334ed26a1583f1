import type { Server } from "bun";
import picomatch from "picomatch";
import { closeReason } from "./client.ts";
import { type Config, RESERVED_ROOMS } from "./config.ts";
import { passEnvFilter, passedEnv, remoteAddr } from "./env.ts";
import { framingFor } from "./framing/index.ts";
import { httpRoutes, text } from "./http.ts";
import {
  ConnectionLimits,
  closeRateLimited,
  type LimitedData,
  queuedBudget,
  roomNameProblem,
} from "./limits.ts";
import type { Logger } from "./log.ts";
import { Room } from "./room.ts";
import { type RoomDirectory, RoomRegistry } from "./rooms.ts";
import { type Counters, countRefusal, createCounters, type RefusalReason } from "./stats.ts";
import { VERSION } from "./version.ts";

export interface RunningServer {
  readonly hostname: string;
  readonly port: number;
  readonly counters: Counters;
  /** The open rooms, by name (the directory's live map). */
  readonly rooms: ReadonlyMap<string, Room>;
  /** Where rooms are opened and closed; for what the map does not show (rooms still stopping). */
  readonly directory: RoomDirectory;
  /** Stops accepting, closes every client, stops every child (SIGTERM, then SIGKILL after the grace period). */
  stop(): Promise<void>;
  /** Settles once the server has stopped: after `stop()`, or when a `--oneshot` client is done. */
  readonly finished: Promise<void>;
}

const MAX_ID = 0xffff_ffff;

/**
 * Starts the server: HTTP endpoints, the websocket upgrade into rooms, and the websockets' events handed to their
 * room. It routes and nothing more: which rooms exist lives in rooms.ts, what a room does in room.ts.
 */
export function serve(config: Config, log: Logger): RunningServer {
  const counters = createCounters();
  const limits = new ConnectionLimits(config, counters);
  const queued = queuedBudget(config, counters, log);
  const roomAllowed = config.rooms === null ? null : picomatch(config.rooms, { dot: true });
  let nextId = 1;
  let oneshotTaken = false;
  let stopped: Promise<void> | null = null;
  let markFinished = () => {};
  const finished = new Promise<void>((resolve) => {
    markFinished = resolve;
  });

  const refuse = (status: number, why: string, label: RefusalReason): Response => {
    countRefusal(counters, label);
    log.debug(`refused a websocket: ${why}`);
    return text(status, why);
  };

  const upgrade = (req: Request, url: URL, server: Server<LimitedData>): Response | undefined => {
    const path = url.pathname.slice(1);
    const slash = path.indexOf("/");
    const segment = slash === -1 ? path : path.slice(0, slash);
    let name: string;
    try {
      name = decodeURIComponent(segment);
    } catch {
      return refuse(400, "invalid room name: bad percent-encoding", "bad_room_name");
    }
    if (name === "") return refuse(400, "no room: connect to /<room>", "bad_room_name");
    const problem = roomNameProblem(name);
    if (problem !== null) return refuse(400, problem, "bad_room_name");
    if (RESERVED_ROOMS.has(name)) return refuse(400, `room name '${name}' is reserved`, "reserved_room");
    if (roomAllowed !== null && !roomAllowed(name))
      return refuse(400, `room '${name}' is not allowed (--rooms)`, "room_not_allowed");
    if (stopped) return refuse(503, "server is shutting down", "shutting_down");
    if (config.oneshot && oneshotTaken)
      return refuse(503, "--oneshot: already serving a client", "oneshot_busy");
    const ip = server.requestIP(req);
    const remoteIp = ip?.address ?? "";
    // Limits: the server's own (open websockets, per IP), then the room's (--maxrooms).
    const limited = limits.admit(remoteIp);
    if (limited !== null) return refuse(limited.status, limited.reason, limited.label);
    const admission = directory.admit(name);
    if (admission.kind === "refuse") return refuse(admission.status, admission.reason, "max_rooms");
    if (nextId > MAX_ID) return refuse(503, "connection IDs exhausted; restart the server", "ids_exhausted");
    const data: LimitedData = {
      conn: {
        id: nextId,
        room: name,
        query: url.search.slice(1),
        remoteIp,
        remotePort: ip?.port ?? 0,
        pathInfo: slash === -1 ? "" : path.slice(slash),
        scriptName: `/${segment}`,
        // Only a connection that opens a room needs its headers (for the child's HTTP_* variables).
        headers: directory.rooms.has(name) ? new Headers() : req.headers,
      },
      room: null,
      slow: false,
      bucket: limits.bucket(),
    };
    if (!server.upgrade(req, { data })) return refuse(400, "expected a websocket upgrade", "not_upgrade");
    nextId++;
    if (config.oneshot) oneshotTaken = true;
    return undefined;
  };

  const server = Bun.serve<LimitedData>({
    hostname: config.hostname,
    port: config.port,
    fetch(req, server) {
      let url: URL;
      try {
        url = new URL(req.url);
      } catch {
        // Bun builds the URL from the Host header; a request without one (HTTP/1.0) cannot be routed.
        return text(400, "bad request: no Host header");
      }
      // A websocket is always a room (reserved names are refused there), whatever the path.
      if (req.headers.get("upgrade")?.toLowerCase() === "websocket") return upgrade(req, url, server);
      return answerHttp(req, url);
    },
    error(err) {
      log.error("request failed:", err);
      return text(500, "internal error");
    },
    websocket: {
      // Past twice the cap Bun closes the socket itself; the room's sweep closes it at the cap, with a reason.
      backpressureLimit: config.maxBuffer * 2,
      closeOnBackpressureLimit: true,
      // What the framing adds (a newline, a header, a `_from` stamp) must still fit the child's input: a message
      // the websocket accepts is never dropped for its size on the way to the child.
      // --maxmessage bounds it further: past it Bun closes the client (1009).
      maxPayloadLength: Math.min(config.maxMessage, config.maxBuffer - framingFor(config).client.overhead),
      open(ws) {
        const { conn } = ws.data;
        counters.connections++;
        log.infoLine(`client ${conn.id} joined room ${conn.room} from ${remoteAddr(conn)}`);
        const over = limits.opened(conn);
        if (over !== null) {
          ws.close(1013, closeReason(over));
          return;
        }
        const room = directory.enter(conn);
        if (!(room instanceof Room)) {
          ws.close(room.code, closeReason(room.reason));
          if (config.oneshot) void handle.stop();
          return;
        }
        room.join(ws);
      },
      message(ws, message) {
        const { bucket } = ws.data;
        if (bucket !== null && !bucket.take()) return closeRateLimited(ws, counters, log);
        ws.data.room?.receive(ws, message);
      },
      drain(ws) {
        queued.note(ws, ws.getBufferedAmount());
      },
      close(ws, code, reason) {
        log.debug(
          `client ${ws.data.conn.id} left room ${ws.data.conn.room} (${code}${reason ? ` ${reason}` : ""})`,
        );
        // Bun closed it for a message past maxPayloadLength (--maxmessage); it says so only in the reason.
        if (code === 1006 && reason === "Received too big message") counters.closedBy.max_message++;
        limits.closed(ws.data.conn);
        queued.forget(ws);
        ws.data.room?.leave(ws);
      },
    },
  });

  const directory: RoomDirectory = new RoomRegistry(
    {
      config,
      server,
      log,
      passedEnv: passedEnv(passEnvFilter(config.passEnv), process.env),
      serverInfo: {
        hostname: config.hostname,
        port: server.port ?? config.port,
        software: `scalesocket/${VERSION}`,
      },
      counters,
      queued,
    },
    () => {
      if (config.oneshot) void handle.stop();
    },
  );
  const answerHttp = httpRoutes(config, directory.rooms, counters);

  const handle: RunningServer = {
    hostname: config.hostname,
    port: server.port ?? config.port,
    counters,
    rooms: directory.rooms,
    directory,
    stop() {
      stopped ??= (async () => {
        await directory.shutdown();
        // The rooms closed their clients after their children's last words; let those close frames go out.
        await limits.drained(config.graceMs);
        await server.stop(true);
        markFinished();
      })();
      return stopped;
    },
    finished,
  };
  return handle;
}
