import type { Server } from "bun";
import { accessGate } from "./access/index.ts";
import { closeReason } from "./client.ts";
import { ClusterNode } from "./cluster/node.ts";
import type { Store } from "./cluster/store.ts";
import type { Config } from "./config.ts";
import { passEnvFilter, passedEnv, remoteAddr } from "./env.ts";
import { framingFor } from "./framing/index.ts";
import { httpRoutes, text } from "./http.ts";
import { ConnectionLimits, closeRateLimited, queuedBudget } from "./limits.ts";
import type { Logger } from "./log.ts";
import { Room } from "./room.ts";
import { type RoomDirectory, RoomRegistry } from "./rooms.ts";
import { type Counters, createCounters } from "./stats.ts";
import { type ServerData, type UpgradeState, upgrader } from "./upgrade.ts";
import { VERSION } from "./version.ts";
import { Pinger, wireOptions } from "./wire.ts";

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
  /**
   * `--drain`: `/health` answers 503 and no room opens here (a cluster hands them to other nodes); the open
   * rooms go on until they are empty or `ms` has passed, then the server stops as `stop()` does.
   */
  drain(ms: number): Promise<void>;
  /** Settles once the server has stopped: after `stop()`, or when a `--oneshot` client is done. */
  readonly finished: Promise<void>;
}

/**
 * Starts the server: HTTP endpoints, the websocket upgrade into rooms, and the websockets' events handed to their
 * room. It routes and nothing more: which rooms exist lives in rooms.ts, what a room does in room.ts, and with
 * `--cluster` (`store` is then the connected directory) which node serves a room in cluster/.
 */
export function serve(config: Config, log: Logger, store: Store | null = null): RunningServer {
  const counters = createCounters();
  const access = accessGate(config, log);
  const pinger = config.pingMs === null ? null : new Pinger(config.pingMs, config.idleTimeout);
  const limits = new ConnectionLimits(config, counters);
  const queued = queuedBudget(config, counters, log);
  let stopped: Promise<void> | null = null;
  let draining: Promise<void> | null = null;
  let markFinished = () => {};
  const finished = new Promise<void>((resolve) => {
    markFinished = resolve;
  });

  const state: UpgradeState = { nextId: 1, oneshotTaken: false, stopped: false };
  // The cluster and the directory exist once Bun has bound the port (a node's advertised address may need it).
  const upgrade = upgrader(config, log, counters, access, limits, state, () => ({ directory, cluster }));

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
        if (cluster?.opened(ws)) return;
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
        cluster?.closed(ws, code, reason);
        ws.data.room?.leave(ws);
      },
      pong(ws) {
        pinger?.pong(ws);
      },
    },
  } satisfies Bun.Serve.Options<ServerData>;
  // A unix socket is 0660 from the start: the umask applies when Bun binds it, so no other user can connect
  // in the moment a chmod would come too late for.
  const umask = config.unixPath === null ? null : process.umask(0o117);
  let server: Server<ServerData>;
  try {
    server = Bun.serve<ServerData>(options);
  } finally {
    if (umask !== null) process.umask(umask);
  }

  const registry = new RoomRegistry(
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
  const cluster =
    config.cluster === null || store === null
      ? null
      : new ClusterNode(
          { ...config, cluster: config.cluster },
          registry,
          store,
          config.cluster.advertise ??
            `${config.tls === null ? "ws" : "wss"}://${urlHost(config.hostname)}:${server.port}`,
          counters,
          log,
        );
  const directory: RoomDirectory = cluster?.directory ?? registry;
  const answerHttp = httpRoutes(config, directory.rooms, counters, access, {
    draining: () => draining !== null,
    lobby: cluster?.directory.lobby ?? null,
    families: () => cluster?.directory.families() ?? [],
  });

  const handle: RunningServer = {
    hostname: config.hostname,
    port: server.port ?? config.port,
    unixPath: config.unixPath,
    counters,
    rooms: directory.rooms,
    directory,
    stop() {
      state.stopped = true;
      stopped ??= (async () => {
        pinger?.stop();
        cluster?.closeLegs();
        await directory.shutdown();
        // The rooms closed their clients after their children's last words; let those close frames go out.
        await limits.drained(config.graceMs);
        // Bun removes a unix socket's file here.
        await server.stop(true);
        markFinished();
      })();
      return stopped;
    },
    drain(ms) {
      draining ??= (async () => {
        directory.drain();
        log.info(`draining: no new rooms; ${directory.rooms.size} open room(s) served up to ${ms / 1000} s`);
        if (directory.rooms.size > 0) {
          let timer: Timer | undefined;
          await new Promise<void>((resolve) => {
            timer = setTimeout(resolve, ms);
            registry.watch(() => directory.rooms.size === 0 && resolve());
          });
          clearTimeout(timer);
        }
        await handle.stop();
      })();
      return draining;
    },
    finished,
  };
  return handle;
}

/** A hostname as it goes in a URL: IPv6 in brackets, a wildcard as loopback (--advertise is required for it). */
function urlHost(hostname: string): string {
  return hostname.includes(":") ? `[${hostname}]` : hostname;
}
