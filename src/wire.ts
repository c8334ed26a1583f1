import type { WebSocketHandler } from "bun";
import type { Client, ClientData } from "./client.ts";
import type { Config } from "./config.ts";

/**
 * The websocket's wire options: compression, subprotocol negotiation and keepalive. Pure but for the
 * {@link Pinger}, which owns one timer for the whole server.
 */

type WireOptions = Pick<WebSocketHandler<ClientData>, "perMessageDeflate" | "idleTimeout" | "sendPings">;

/**
 * Bun.serve's websocket options for `--deflate`, `--idletimeout` and `--pingms`. Without `--pingms`, Bun pings a
 * quiet client shortly before the idle timeout and closes a connection that saw no traffic either way for that
 * long. With it, the {@link Pinger} pings and judges idleness; Bun's timer, which every ping resets, only sheds a
 * socket that lingers after the pinger closed it, so it gets twice the time.
 */
export function wireOptions(config: Config): WireOptions {
  // Bun's shared compressor: no compression state per socket. A published message is still compressed once per
  // client (uWS compresses in each socket's send), which is what --deflate costs in a busy room.
  const perMessageDeflate = config.deflate;
  if (config.pingMs === null) return { perMessageDeflate, idleTimeout: config.idleTimeout, sendPings: true };
  return { perMessageDeflate, idleTimeout: Math.min(960, config.idleTimeout * 2), sendPings: false };
}

/** What the upgrade does about `Sec-WebSocket-Protocol`: answer with a protocol, with none, or refuse. */
export type SubprotocolChoice = { kind: "ok"; protocol: string } | { kind: "refuse"; reason: string };

/**
 * Picks the first of `supported` (the server's order of preference) that the client `offered` (the request's
 * `Sec-WebSocket-Protocol`, a comma list). A client that offers none is admitted without one, as websocketd does:
 * plain clients (curl, scripts) never offer any. One that offers only others is refused with the list.
 */
export function chooseSubprotocol(offered: string | null, supported: readonly string[]): SubprotocolChoice {
  if (offered === null || offered.trim() === "") return { kind: "ok", protocol: "" };
  const wanted = new Set(offered.split(",").map((p) => p.trim()));
  const protocol = supported.find((p) => wanted.has(p));
  if (protocol !== undefined) return { kind: "ok", protocol };
  return { kind: "refuse", reason: `unsupported subprotocol; this server speaks ${supported.join(", ")}` };
}

/**
 * `--pingms`: pings every client on one server-wide timer, and closes a client that answered no ping for
 * `--idletimeout` seconds. Only pongs count as an answer (RFC 6455 obliges every client to send them), so a
 * message costs nothing here; the last answer is kept in ticks of the timer, so a pong costs no clock read.
 * Bun's own pings cannot be spaced: they come only shortly before its idle timeout.
 */
export class Pinger {
  /** The tick each client last answered in. */
  private readonly answered = new Map<Client, number>();
  private tick = 0;
  private readonly timer: Timer;
  /** Ticks without an answer after which a client is closed; 0 never. */
  private readonly idleTicks: number;

  constructor(
    pingMs: number,
    private readonly idleSeconds: number,
  ) {
    this.idleTicks = idleSeconds === 0 ? 0 : Math.ceil((idleSeconds * 1000) / pingMs);
    this.timer = setInterval(() => this.pingAll(), pingMs);
    // The server's listening socket keeps the process alive; the pinger alone must not.
    this.timer.unref();
  }

  add(ws: Client): void {
    this.answered.set(ws, this.tick);
  }

  /** The client answered a ping. */
  pong(ws: Client): void {
    if (this.answered.has(ws)) this.answered.set(ws, this.tick);
  }

  remove(ws: Client): void {
    this.answered.delete(ws);
  }

  stop(): void {
    clearInterval(this.timer);
    this.answered.clear();
  }

  private pingAll(): void {
    const tick = ++this.tick;
    for (const [ws, last] of this.answered) {
      if (this.idleTicks > 0 && tick - last > this.idleTicks) {
        this.answered.delete(ws);
        ws.close(1001, `no answer to pings for ${this.idleSeconds} s`);
      } else {
        ws.ping();
      }
    }
  }
}
