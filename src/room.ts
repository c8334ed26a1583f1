import type { Server } from "bun";
import type { MessageCache } from "./cache.ts";
import { Child, type ChildEvents, describeExit, type ExitInfo } from "./child/child.ts";
import type { Spawner } from "./child/spawner.ts";
import { transportFor } from "./child/transports.ts";
import { type Client, type ClientData, closeReason } from "./client.ts";
import type { Config } from "./config.ts";
import { type Connection, childEnv, type ServerInfo } from "./env.ts";
import type { ByteSplitter } from "./framing/bytesplit.ts";
import { type ClientFraming, framingFor, type RoomOutput } from "./framing/index.ts";
import { type QueuedBudget, sweepQueued } from "./limits.ts";
import { type Logger, type TaggedLogger, tagged } from "./log.ts";
import type { Counters } from "./stats.ts";

/** What a room needs from the server that owns it. */
export interface RoomContext {
  config: Config;
  server: Server<ClientData>;
  log: Logger;
  /** The server's variables that children inherit (`--passenv`), taken at start. */
  passedEnv: Readonly<Record<string, string>>;
  serverInfo: ServerInfo;
  counters: Counters;
  /** `--maxqueued`: what all clients have queued, fed by each room's slow-client sweep. */
  queued: QueuedBudget;
  /** The room stopped taking clients: forget it, so the next connection starts a fresh child. */
  onClosed: (room: Room, stopped: Promise<unknown>) => void;
  /** Starts children off the event loop; null starts them on it. */
  spawner: Spawner | null;
}

/** Topics: a room's, and a client's own. Prefixed, so that no room name can be a client's topic. */
const roomTopic = (name: string): string => `room:${name}`;
const clientTopic = (id: number): string => `client:${id}`;

/**
 * A room: one child process shared by its clients. It owns the child, the members, the cache and the metadata.
 * Everything a room reacts to is a method here, in the order of a room's life: a client joins, a client sends a
 * message, the child starts, the child prints (its framing's reader turns output into broadcasts, messages for
 * one client and metadata), the child exits, a client leaves. Child output is fanned out with `server.publish`
 * on the room's topic, so Bun does the per-client work natively.
 */
export class Room implements ChildEvents, RoomOutput {
  readonly members = new Map<number, Client>();
  /** The child's last `"_meta": true` message, `_meta` removed. */
  metadata: Record<string, unknown> | null = null;
  /** Connections accepted since the room opened. */
  connectionsTotal = 0;
  /**
   * How long the child ran, in ms, when it crashed (ended on its own with a failure or a signal) or could not
   * serve the room; null while it runs, after a clean exit, and when its clients or the server closed the room.
   * The crash back-off reads it.
   */
  endedAfterMs: number | null = null;
  private readonly openedAt = performance.now();
  private readonly child: Child;
  private readonly log: TaggedLogger;
  private readonly client: ClientFraming;
  private readonly reader: ByteSplitter;
  private closed = false;
  /** Some client reported backpressure since the last sweep. */
  private pressure = false;
  /** The room's topic: every member subscribes to it, and what the child broadcasts is published on it. */
  private readonly topic: string;
  /**
   * Whether the child addresses clients by ID: each member then also subscribes to a topic of its own. Bun
   * buffers what is published and writes each client's share once per event-loop turn, where a `send` outside its
   * own callbacks is a system call each; and a client gets what was published to either of its topics in the
   * order published.
   */
  private readonly addressed: boolean;
  private readonly cacheAll: boolean;
  /** `--passstderr`: what a line of the child's stderr becomes for the clients; null keeps it in the log. */
  private stderrMessage: ((line: string) => string) | null = null;

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
    const { config } = ctx;
    const framing = framingFor(config);
    this.client = framing.client;
    this.addressed = framing.server.addressed;
    this.reader = framing.server.reader(this);
    this.topic = roomTopic(name);
    this.cacheAll = config.cache?.type === "all";
    if (config.passStderr) this.stderrMessage = framing.server.stderr;
    this.log = tagged(ctx.log, name);
    const command = {
      cmd: config.cmd,
      args: config.args,
      env: childEnv(ctx.passedEnv, opener, ctx.serverInfo, tcpPort === null ? {} : { PORT: String(tcpPort) }),
      searchPath: process.env.PATH,
      spawner: ctx.spawner,
    };
    const delayMs = Math.round((config.delay ?? 0) * 1000);
    this.child = new Child(
      command,
      transportFor(config, tcpPort),
      { maxBuffer: config.maxBuffer, graceMs: config.graceMs, delayMs },
      this,
    );
    this.child.done.then((exit) => {
      if (exit !== null) this.exited(exit);
    });
  }

  // Clients.
  /** A client joins: it receives the cache, then the room's traffic; the child hears of it (`--joinmsg`). */
  join(ws: Client): void {
    ws.data.room = this;
    this.members.set(ws.data.conn.id, ws);
    this.connectionsTotal++;
    // Replay and subscribe in one synchronous step: no child output can land between them, so the client sees
    // the cache and then live traffic with nothing lost or repeated at the seam.
    if (this.cache !== null) for (const message of this.cache.entries()) ws.send(message);
    ws.subscribe(this.topic);
    if (this.addressed) ws.subscribe(clientTopic(ws.data.conn.id));
    this.toChild(this.client.joined(ws.data.conn));
  }

  /** A client's message, as its framing makes it for the child. */
  receive(ws: Client, message: string | Buffer): void {
    // Closed with its clients still there: the server is shutting down and the child's input has ended.
    if (this.closed) return;
    const data = this.client.toChild(message, ws.data.conn.id);
    if (data !== null) {
      this.toChild(data);
      return;
    }
    this.ctx.counters.invalidClientMessages++;
    this.log.debug(`dropped a message from client ${ws.data.conn.id} that is not ${this.client.refusal}`);
  }

  /** A client leaves; the child hears of it (`--leavemsg`), and the last one out stops the child. */
  leave(ws: Client): void {
    if (!this.members.delete(ws.data.conn.id) || this.closed) return;
    this.toChild(this.client.left(ws.data.conn));
    if (this.members.size === 0) {
      this.closed = true;
      this.log.debug(`last client left, stopping ${this.childName}`);
      this.ctx.onClosed(this, this.child.stop());
    }
  }

  /**
   * Server shutdown: stops the child (its input ends; SIGTERM, then SIGKILL, after the grace period) while its
   * clients stay, so that everything it prints on the way out, a goodbye from its own TERM handler included,
   * reaches them; only then are they closed with 1001.
   */
  async shutdown(): Promise<ExitInfo | null> {
    this.closed = true;
    const exit = await this.child.stop();
    this.closeMembers(1001, "server shutting down");
    return exit;
  }

  // The child (ChildEvents).
  started(pid: number): void {
    this.ctx.counters.childrenSpawned++;
    const port = this.tcpPort === null ? "" : `, port ${this.tcpPort}`;
    this.log.info(`started ${this.ctx.config.cmd} (pid ${pid}${port})`);
  }

  startFailed(reason: string): void {
    this.ctx.counters.spawnFailures++;
    this.fail(reason);
  }

  /** The child cannot serve the room (a TCP child that never listened). */
  attachFailed(reason: string): void {
    this.fail(reason);
  }

  /** One chunk of the child's output: cut into messages by the framing's reader, then the slow-client check. */
  output(chunk: Uint8Array): void {
    this.ctx.counters.bytesFromChild += chunk.byteLength;
    this.reader.push(chunk);
    this.sweepSlowClients();
  }

  outputEnded(): void {
    this.reader.end();
    this.sweepSlowClients();
  }

  logLine(line: string, stderr: boolean): void {
    this.log.log(line);
    // Not `closed`: during a shutdown the clients stay to hear the child's last words, stderr's included.
    if (!stderr || this.stderrMessage === null || this.members.size === 0) return;
    if (this.ctx.server.publish(this.topic, this.stderrMessage(line)) <= 0) this.pressure = true;
  }

  logOversize(chars: number): void {
    this.log.warn(`dropped a log line of ${chars} characters`);
  }

  written(bytes: number): void {
    this.ctx.counters.bytesToChild += bytes;
  }

  /** The child exited: on its own, its clients are closed with how; after a stop, it is only logged. */
  private exited(exit: ExitInfo): void {
    const { counters, config } = this.ctx;
    if (exit.signal !== null) counters.childrenKilledBySignal++;
    else if (exit.code === 0) counters.childrenExitedZero++;
    else counters.childrenExitedNonZero++;
    const how = describeExit(exit);
    if (this.closed) {
      this.log.info(`stopped ${config.cmd} (pid ${this.child.pid}): ${how}`);
      return;
    }
    // A clean exit is no crash: a one-shot command (`echo`, `date`) may end at once every time.
    if (exit.code !== 0) this.endedAfterMs = performance.now() - this.openedAt;
    this.log.info(`${config.cmd} (pid ${this.child.pid}) ${how}, closing ${this.members.size} client(s)`);
    this.closeMembers(exit.code === 0 ? 1000 : 1011, `${config.cmd} ${how}`);
    this.ctx.onClosed(this, this.child.done);
  }

  // The child's messages (RoomOutput, called by its framing's reader).
  broadcast(message: string | Uint8Array, tagged: boolean): void {
    this.ctx.counters.messagesFromChild++;
    if (this.ctx.server.publish(this.topic, message) <= 0) this.pressure = true;
    if (this.cacheAll || tagged) this.cache?.push(message);
  }

  /** A message for one client (its own topic); unknown IDs, and clients of other rooms, are dropped. */
  sendTo(id: number, message: string | Uint8Array): void {
    this.ctx.counters.messagesFromChild++;
    if (!this.members.has(id)) return;
    if (this.ctx.server.publish(clientTopic(id), message) <= 0) this.pressure = true;
  }

  setMetadata(meta: Record<string, unknown>): void {
    this.ctx.counters.messagesFromChild++;
    this.metadata = meta;
  }

  dropped(warning: string): void {
    this.ctx.counters.oversizeMessages++;
    this.log.warn(warning);
  }

  has(id: number): boolean {
    return this.members.has(id);
  }

  /** The child for a log line: its pid, or that it is still being started. */
  private get childName(): string {
    return this.child.pid === null ? `${this.ctx.config.cmd} (still starting)` : `pid ${this.child.pid}`;
  }

  private toChild(data: string | Uint8Array | null): void {
    if (data === null) return;
    if (this.child.write(data)) {
      this.ctx.counters.messagesToChild++;
      return;
    }
    this.ctx.counters.droppedToChild++;
    const cap = this.ctx.config.maxBuffer;
    this.log.warn(`dropped a message to ${this.childName}: its input is full (${cap} bytes)`);
  }

  /** After each chunk of output: only after a publish reported backpressure, so a room that keeps up pays nothing. */
  private sweepSlowClients(): void {
    if (!this.pressure) return;
    this.pressure = false;
    sweepQueued(this.members.values(), this.ctx, this.log);
  }

  /** Ends the room for its clients: no more joins or leaves count, every member gets the close frame. */
  private closeMembers(code: number, reason: string): void {
    this.closed = true;
    const frameReason = closeReason(reason);
    for (const ws of this.members.values()) ws.close(code, frameReason);
    this.members.clear();
  }

  /** The child cannot serve the room: close everyone with the reason. */
  private fail(reason: string): void {
    if (this.closed) return;
    this.endedAfterMs = performance.now() - this.openedAt;
    this.log.error(reason);
    this.closeMembers(1011, reason);
    this.ctx.onClosed(this, this.child.done);
  }
}
