import type { Server, ServerWebSocket } from "bun";
import type { MessageCache } from "./cache.ts";
import type { ByteSplitter } from "./child/bytesplit.ts";
import { Child, type ExitInfo } from "./child/child.ts";
import { outputSplitter } from "./child/output.ts";
import type { Spawner } from "./child/spawner.ts";
import type { Config } from "./config.ts";
import { type Connection, childEnv, expandTemplate, remoteAddr, type ServerInfo } from "./env.ts";
import { encodeClose, encodeFrame, encodeOpen, FrameType, GwsocketParser } from "./framing/gwsocket.ts";
import { routeLine, stampFrom } from "./framing/json.ts";
import { type Logger, type TaggedLogger, tagged } from "./log.ts";
import type { Counters } from "./stats.ts";

/** Per-connection state, carried by Bun on the websocket. */
export interface ClientData {
  conn: Connection;
  room: Room | null;
  /** Set once the client was closed for falling behind, so the sweep closes it only once. */
  slow: boolean;
}

export type Client = ServerWebSocket<ClientData>;

/** What a room needs from the server that owns it. */
export interface RoomContext {
  config: Config;
  server: Server<ClientData>;
  log: Logger;
  /** The server's variables that children inherit (`--passenv`), taken at start. */
  passedEnv: Readonly<Record<string, string>>;
  serverInfo: ServerInfo;
  counters: Counters;
  /** The room stopped taking clients: forget it, so the next connection starts a fresh child. */
  onClosed: (room: Room, stopped: Promise<unknown>) => void;
  /** Starts children off the event loop; null starts them on it. */
  spawner: Spawner | null;
}

/** Topics: a room's, and a client's own. Prefixed, so that no room name can be a client's topic. */
const roomTopic = (name: string): string => `room:${name}`;
const clientTopic = (id: number): string => `client:${id}`;

/** Close reasons are limited to 123 bytes by RFC 6455. */
export function closeReason(text: string): string {
  const bytes = new TextEncoder().encode(text);
  if (bytes.length <= 123) return text;
  return `${new TextDecoder().decode(bytes.subarray(0, 120)).replace(/\uFFFD$/, "")}...`;
}

const utf8 = new TextDecoder();

/**
 * A room: one child process shared by its clients. It owns the child, the members, the cache and the metadata;
 * child output is fanned out with `server.publish` on the room's topic, so Bun does the per-client work natively.
 */
export class Room {
  readonly members = new Map<number, Client>();
  /** The child's last `"_meta": true` message, `_meta` removed. */
  metadata: Record<string, unknown> | null = null;
  /** Connections accepted since the room opened. */
  connectionsTotal = 0;
  private readonly child: Child;
  private readonly log: TaggedLogger;
  private closed = false;
  /** Some client reported backpressure since the last sweep. */
  private pressure = false;
  /** The room's topic: every member subscribes to it, and what the child broadcasts is published on it. */
  private readonly topic: string;
  /**
   * Whether the child addresses clients by ID (`_to` under JSON framing, gwsocket headers): each member then also
   * subscribes to a topic of its own, so a message for one client is published too. Bun buffers what is
   * published and writes each client's share once per event-loop turn, where a `send` outside its own callbacks
   * is a system call each; and a client gets what was published to either of its topics in the order published.
   */
  private readonly addressed: boolean;
  /** Under JSON server framing, child lines are routed (`_to`, `_meta`); otherwise only read for `_cache`. */
  private readonly routing: boolean;
  private readonly cacheAll: boolean;
  /** Text mode ends each client message with a newline; binary and gwsocket write exactly what they are given. */
  private readonly newline: boolean;

  /**
   * Spawns the room's child with the environment of the connection that opens it; throws SpawnError.
   * `cache` is the room's `--cache` (a persisted one when the room reopens with `--cachepersist`), or null;
   * `tcpPort` the port the child listens on with `--tcp`, or null.
   */
  constructor(
    readonly name: string,
    private readonly ctx: RoomContext,
    opener: Connection,
    readonly cache: MessageCache | null,
    readonly tcpPort: number | null,
  ) {
    const { config, counters } = ctx;
    this.routing = config.serverFrame === "json";
    this.topic = roomTopic(name);
    this.addressed = this.routing || config.serverFrame === "gwsocket";
    this.cacheAll = config.cache?.type === "all";
    this.newline = !config.binary && config.clientFrame !== "gwsocket";
    this.log = tagged(ctx.log, name);
    this.child = new Child({
      cmd: config.cmd,
      args: config.args,
      env: childEnv(ctx.passedEnv, opener, ctx.serverInfo, tcpPort === null ? {} : { PORT: String(tcpPort) }),
      searchPath: process.env.PATH,
      maxBuffer: config.maxBuffer,
      graceMs: config.graceMs,
      delayMs: Math.round((config.delay ?? 0) * 1000),
      tcpPort,
      connectTimeoutMs: config.tcpTimeoutMs,
      osPipes: config.osPipes,
      output: this.outputFor(config),
      onChunkEnd: this.sweepSlowClients,
      onLog: (line) => this.log.log(line),
      onOversizeLog: (chars) => this.log.warn(`dropped a log line of ${chars} characters`),
      onRead: (bytes) => {
        counters.bytesFromChild += bytes;
      },
      onWritten: (bytes) => {
        counters.bytesToChild += bytes;
      },
      onAttachFailed: (reason) => this.fail(reason),
      spawner: ctx.spawner,
      onStarted: (pid) => {
        counters.childrenSpawned++;
        this.log.info(`started ${config.cmd} (pid ${pid}${tcpPort === null ? "" : `, port ${tcpPort}`})`);
      },
      onStartFailed: (reason) => {
        counters.spawnFailures++;
        this.fail(reason);
      },
    });
    this.child.done.then((exit) => {
      if (exit === null) return;
      if (exit.signal !== null) counters.childrenKilledBySignal++;
      else if (exit.code === 0) counters.childrenExitedZero++;
      else counters.childrenExitedNonZero++;
      this.childExited(exit);
    });
  }

  /** Adds a client: it receives the cache, then the room's traffic; the child hears of it (`--joinmsg`). */
  join(ws: Client): void {
    ws.data.room = this;
    this.members.set(ws.data.conn.id, ws);
    this.connectionsTotal++;
    // Replay and subscribe in one synchronous step: no child output can land between them, so the client sees
    // the cache and then live traffic with nothing lost or repeated at the seam.
    if (this.cache !== null) for (const message of this.cache.entries()) ws.send(message);
    ws.subscribe(this.topic);
    if (this.addressed) ws.subscribe(clientTopic(ws.data.conn.id));
    const { conn } = ws.data;
    if (this.ctx.config.clientFrame === "gwsocket") this.toChild(encodeOpen(conn.id, remoteAddr(conn)));
    else if (this.ctx.config.joinMsg !== null) this.toChild(expandTemplate(this.ctx.config.joinMsg, conn));
  }

  /** Removes a client; the child hears of it (`--leavemsg`), and the last one out stops the child. */
  leave(ws: Client): void {
    if (!this.members.delete(ws.data.conn.id) || this.closed) return;
    const { conn } = ws.data;
    if (this.ctx.config.clientFrame === "gwsocket") this.toChild(encodeClose(conn.id));
    else if (this.ctx.config.leaveMsg !== null) this.toChild(expandTemplate(this.ctx.config.leaveMsg, conn));
    if (this.members.size === 0) {
      this.closed = true;
      this.log.debug(`last client left, stopping ${this.childName}`);
      this.ctx.onClosed(this, this.child.stop());
    }
  }

  /**
   * A client's message for the child: a line in text mode (stamped with `_from` under JSON framing), raw bytes
   * in binary mode, a gwsocket frame with the sender's ID under gwsocket framing.
   */
  receive(ws: Client, message: string | Buffer): void {
    const frame = this.ctx.config.clientFrame;
    if (frame === "json") {
      const stamped = stampFrom(
        typeof message === "string" ? message : utf8.decode(message),
        ws.data.conn.id,
      );
      if (stamped === null) {
        this.ctx.counters.invalidClientMessages++;
        this.log.debug(`dropped a message from client ${ws.data.conn.id} that is not a JSON object`);
        return;
      }
      this.toChild(stamped);
    } else if (frame === "gwsocket") {
      const type = typeof message === "string" ? FrameType.text : FrameType.binary;
      this.toChild(encodeFrame(ws.data.conn.id, type, message));
    } else {
      this.toChild(message);
    }
  }

  /** The child for a log line: its pid, or that it is still being started. */
  private get childName(): string {
    return this.child.pid === null ? `${this.ctx.config.cmd} (still starting)` : `pid ${this.child.pid}`;
  }

  /** Closes every client and stops the child, for server shutdown. */
  shutdown(): Promise<ExitInfo | null> {
    this.closeMembers(1001, "server shutting down");
    return this.child.stop();
  }

  /** Ends the room for its clients: no more joins or leaves count, every member gets the close frame. */
  private closeMembers(code: number, reason: string): void {
    this.closed = true;
    const frameReason = closeReason(reason);
    for (const ws of this.members.values()) ws.close(code, frameReason);
    this.members.clear();
  }

  private outputFor(config: Config): ByteSplitter {
    const oversize = (size: number) => {
      this.ctx.counters.oversizeMessages++;
      this.log.warn(`dropped a child message of more than ${size} bytes (limit ${config.maxBuffer})`);
    };
    if (config.serverFrame === "gwsocket") {
      return new GwsocketParser(
        config.maxBuffer,
        this.routeFrame,
        (message) => {
          this.ctx.counters.oversizeMessages++;
          this.log.warn(message);
        },
        // While resynchronising, only a header for a member (or a broadcast) is believed: see GwsocketParser.
        (id) => id === 0 || this.members.has(id),
      );
    }
    const json = this.routing || config.cache?.type === "tagged";
    return outputSplitter(
      { binary: config.binary, delimiters: config.delimiters, maxMessage: config.maxBuffer },
      // Reading routing keys costs a look at each line; plain rooms broadcast without one.
      json ? this.routeMessage : this.broadcast,
      oversize,
    );
  }

  private toChild(data: string | Uint8Array): void {
    if (this.child.write(data, this.newline)) {
      this.ctx.counters.messagesToChild++;
      return;
    }
    this.ctx.counters.droppedToChild++;
    this.log.warn(
      `dropped a message to ${this.childName}: its input is full (${this.ctx.config.maxBuffer} bytes)`,
    );
  }

  private readonly broadcast = (message: string | Uint8Array): void => {
    this.ctx.counters.messagesFromChild++;
    if (this.ctx.server.publish(this.topic, message) <= 0) this.pressure = true;
    if (this.cacheAll) this.cache?.push(message);
  };

  /** A message for one client (its own topic); unknown IDs are dropped. */
  private sendTo(id: number, message: string | Uint8Array): void {
    this.ctx.counters.messagesFromChild++;
    if (!this.members.has(id)) return;
    if (this.ctx.server.publish(clientTopic(id), message) <= 0) this.pressure = true;
  }

  private readonly routeMessage = (message: string | Uint8Array): void => {
    const routing = typeof message === "string" ? routeLine(message) : null;
    if (routing === null) {
      this.broadcast(message);
    } else if (this.routing && routing.meta !== null) {
      this.ctx.counters.messagesFromChild++;
      this.metadata = routing.meta;
    } else if (this.routing && routing.to !== null) {
      // Routed messages are private: never cached.
      this.sendTo(routing.to, message);
    } else {
      this.broadcast(message);
      if (routing.cache && !this.cacheAll) this.cache?.push(message);
    }
  };

  /** A gwsocket frame from the child: ID 0 broadcasts, any other goes to that client; text stays text. */
  private readonly routeFrame = (id: number, type: number, payload: Uint8Array): void => {
    const message = type === FrameType.text ? utf8.decode(payload) : payload;
    if (id === 0) this.broadcast(message);
    else this.sendTo(id, message);
  };

  /**
   * Closes the clients whose outgoing buffer passed `--maxbuffer`; called after each chunk of child output was
   * delivered. Does anything only after a send reported backpressure, so a room that keeps up pays nothing for
   * it. Bun's own `backpressureLimit` (twice the cap, set by the server) stays as a hard backstop that closes
   * without a reason.
   */
  private readonly sweepSlowClients = (): void => {
    if (!this.pressure) return;
    this.pressure = false;
    const cap = this.ctx.config.maxBuffer;
    for (const ws of this.members.values()) {
      if (ws.data.slow || ws.getBufferedAmount() <= cap) continue;
      ws.data.slow = true;
      this.ctx.counters.slowClientsClosed++;
      this.log.warn(`closing client ${ws.data.conn.id}: more than ${cap} bytes waiting to be sent`);
      ws.close(1013, closeReason(`client too slow: more than ${cap} bytes queued`));
    }
  };

  /** The child cannot serve the room (a TCP child that never listened): close everyone with the reason. */
  private fail(reason: string): void {
    if (this.closed) return;
    this.log.error(reason);
    this.closeMembers(1011, reason);
    this.ctx.onClosed(this, this.child.done);
  }

  private childExited(exit: ExitInfo): void {
    const how =
      exit.signal !== null
        ? `was killed by ${exit.signal}`
        : exit.code === null
          ? "can no longer be watched"
          : `exited with code ${exit.code}`;
    if (this.closed) {
      this.log.info(`stopped ${this.ctx.config.cmd} (pid ${this.child.pid}): ${how}`);
      return;
    }
    this.log.info(
      `${this.ctx.config.cmd} (pid ${this.child.pid}) ${how}, closing ${this.members.size} client(s)`,
    );
    this.closeMembers(exit.code === 0 ? 1000 : 1011, `${this.ctx.config.cmd} ${how}`);
    this.ctx.onClosed(this, this.child.done);
  }
}
