import type { Server } from "bun";
import picomatch from "picomatch";
import {
  type AccessResult,
  accessGate,
  type ClientAddress,
  clientAddress,
  trustedProxies,
} from "./access/index.ts";
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
import { chooseSubprotocol, Pinger, wireOptions } from "./wire.ts";

export interface RunningServer {
  readonly hostname: string;
  readonly port: number;
  /** The unix socket it listens on (`--addr unix:PATH`), or null on TCP. */
  readonly unixPath: string | null;
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

/** The room an upgrade asks for, as the URL names it. */
interface Target {
  name: string;
  /** The room segment, still percent-encoded. */
  segment: string;
  pathInfo: string;
  /** The subprotocol answered (`--subprotocol`), empty when none. */
  protocol: string;
}

/**
 * Starts the server: HTTP endpoints, the websocket upgrade into rooms, and the websockets' events handed to their
 * room. It routes and nothing more: which rooms exist lives in rooms.ts, what a room does in room.ts.
 */
export function serve(config: Config, log: Logger): RunningServer {
  const counters = createCounters();
  const roomAllowed = config.rooms === null ? null : picomatch(config.rooms, { dot: true });
  const access = accessGate(config, log);
  const trusted = config.trustProxy === null ? null : trustedProxies(config.trustProxy);
  const pinger = config.pingMs === null ? null : new Pinger(config.pingMs, config.idleTimeout);
  const limits = new ConnectionLimits(config, counters);
  const queued = queuedBudget(config, counters, log);
  let nextId = 1;
  let oneshotTaken = false;
  let stopped: Promise<void> | null = null;
  let markFinished = () => {};
  const finished = new Promise<void>((resolve) => {
    markFinished = resolve;
  });

  const refuse = (status: number, why: string, label: RefusalReason, response?: Response): Response => {
    countRefusal(counters, label);
    log.debug(`refused a websocket: ${why}`);
    return response ?? text(status, why);
  };

  const upgrade = (
    req: Request,
    url: URL,
    server: Server<LimitedData>,
  ): Response | undefined | Promise<Response | undefined> => {
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
    let protocol = "";
    if (config.subprotocols !== null) {
      const choice = chooseSubprotocol(req.headers.get("sec-websocket-protocol"), config.subprotocols);
      if (choice.kind === "refuse") return refuse(400, choice.reason, "bad_subprotocol");
      protocol = choice.protocol;
    }
    const target: Target = { name, segment, pathInfo: slash === -1 ? "" : path.slice(slash), protocol };
    // Who may connect (access/): a Promise when a token is verified or the auth service is asked.
    const peer = server.requestIP(req);
    const client = clientAddress({ ip: peer?.address ?? "", port: peer?.port ?? 0 }, req.headers, trusted);
    const decided = access.check(req, url, name, client.ip);
    if (decided instanceof Promise) return decided.then((d) => enterUpgrade(req, server, target, client, d));
    return enterUpgrade(req, server, target, client, decided);
  };

  /** The upgrade once access is decided; what it checks may have changed while a token was verified. */
  const enterUpgrade = (
    req: Request,
    server: Server<LimitedData>,
    { name, segment, pathInfo, protocol }: Target,
    client: ClientAddress,
    decided: AccessResult,
  ): Response | undefined => {
    if ("status" in decided) {
      const label =
        decided.status === 403 ? "origin" : decided.status === 401 ? "unauthorized" : "auth_service";
      return refuse(decided.status, decided.reason, label, decided.response);
    }
    if (stopped) return refuse(503, "server is shutting down", "shutting_down");
    if (config.oneshot && oneshotTaken)
      return refuse(503, "--oneshot: already serving a client", "oneshot_busy");
    // Limits: the server's own (open websockets, per client IP), then the room's (--maxrooms).
    const limited = limits.admit(client.ip);
    if (limited !== null) return refuse(limited.status, limited.reason, limited.label);
    const admission = directory.admit(name);
    if (admission.kind === "refuse") return refuse(admission.status, admission.reason, "max_rooms");
    if (nextId > MAX_ID) return refuse(503, "connection IDs exhausted; restart the server", "ids_exhausted");
    const data: LimitedData = {
      conn: {
        id: nextId,
        room: name,
        query: decided.query,
        remoteIp: client.ip,
        remotePort: client.port,
        pathInfo,
        scriptName: `/${segment}`,
        protocol,
        // Only a connection that opens a room needs its headers (for the child's HTTP_* variables).
        headers: directory.rooms.has(name) ? new Headers() : decided.headers,
        user: decided.user,
      },
      room: null,
      slow: false,
      bucket: limits.bucket(),
    };
    const headers = protocol === "" ? undefined : { "Sec-WebSocket-Protocol": protocol };
    if (!server.upgrade(req, { data, headers }))
      return refuse(400, "expected a websocket upgrade", "not_upgrade");
    nextId++;
    if (config.oneshot) oneshotTaken = true;
    return undefined;
  };

  const options = {
    ...(config.unixPath === null
      ? { hostname: config.hostname, port: config.port }
      : { unix: config.unixPath }),
    // Read at start: Bun's server.reload() keeps serving the old certificate, so new ones need a restart.
    tls: config.tls === null ? undefined : { cert: config.tls.cert, key: config.tls.key },
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
      ...wireOptions(config),
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
        pinger?.add(ws);
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
        // At info, as the join is: a room's comings and goings read as pairs. The logger escapes the reason.
        log.infoLine(
          `client ${ws.data.conn.id} left room ${ws.data.conn.room} (${code}${reason ? ` ${reason}` : ""})`,
        );
        // Bun closed it for a message past maxPayloadLength (--maxmessage); it says so only in the reason.
        if (code === 1006 && reason === "Received too big message") counters.closedBy.max_message++;
        pinger?.remove(ws);
        limits.closed(ws.data.conn);
        queued.forget(ws);
        ws.data.room?.leave(ws);
      },
      pong(ws) {
        pinger?.pong(ws);
      },
    },
  } satisfies Bun.Serve.Options<LimitedData>;
  // A unix socket is 0660 from the start: the umask applies when Bun binds it, so no other user can connect
  // in the moment a chmod would come too late for.
  const umask = config.unixPath === null ? null : process.umask(0o117);
  let server: Server<LimitedData>;
  try {
    server = Bun.serve<LimitedData>(options);
  } finally {
    if (umask !== null) process.umask(umask);
  }

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
  const answerHttp = httpRoutes(config, directory.rooms, counters, access);

  const handle: RunningServer = {
    hostname: config.hostname,
    port: server.port ?? config.port,
    unixPath: config.unixPath,
    counters,
    rooms: directory.rooms,
    directory,
    stop() {
      stopped ??= (async () => {
        pinger?.stop();
        await directory.shutdown();
        // The rooms closed their clients after their children's last words; let those close frames go out.
        await limits.drained(config.graceMs);
        // Bun removes a unix socket's file here.
        await server.stop(true);
        markFinished();
      })();
      return stopped;
    },
    finished,
  };
  return handle;
}
