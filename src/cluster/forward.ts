import { type Client, type ClientRoom, closeReason } from "../client.ts";
import type { Logger } from "../log.ts";
import type { Counters } from "../stats.ts";
import { FORWARD_HEADER } from "./identity.ts";
import type { ClusterCounters } from "./stats.ts";

/** Where a forwarded client goes: the owner's URL for its room, and the signed header that says who it is. */
export interface ForwardTarget {
  url: string;
  header: string;
}

export interface ForwardContext {
  maxBuffer: number;
  counters: Counters;
  cluster: ClusterCounters;
  log: Logger;
}

/** Close codes that can be sent in a close frame (RFC 6455 7.4.1: 1005, 1006 and 1015 are only reported). */
function sendable(code: number): boolean {
  return (
    (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) ||
    (code >= 3000 && code <= 4999)
  );
}

/**
 * A client of this node whose room lives on another: one websocket to the owner carries its frames both ways,
 * untouched (text stays text, binary stays binary), and each side's close, code and reason, reaches the other.
 * It stands where a room would in the client's data, so the server's handlers need no branch for it.
 *
 * Neither leg can be paused (a websocket has no way to stop reading), so the `--maxbuffer` rule holds end to
 * end by closing: a client that does not drain what the owner sends is closed 1013 past `--maxbuffer`, as a
 * slow client of a local room is; a link to the owner that does not drain what the client sends, likewise.
 * The owner applies its own rules to the link as to any client, so a stalled hop is closed there too.
 */
export class ForwardLeg implements ClientRoom {
  private readonly upstream: WebSocket;
  private opened = false;
  private ended = false;
  /** What the client sent before the owner answered, in order; bounded by `--maxbuffer`. */
  private pending: (string | Buffer)[] = [];
  private pendingBytes = 0;

  constructor(
    private readonly ws: Client,
    target: ForwardTarget,
    private readonly ctx: ForwardContext,
    private readonly onEnd: (leg: ForwardLeg) => void,
  ) {
    this.upstream = new WebSocket(target.url, { headers: { [FORWARD_HEADER]: target.header } });
    ctx.cluster.forwardedOut++;
    ctx.cluster.forwardedOutOpen++;
    this.upstream.binaryType = "arraybuffer";
    this.upstream.addEventListener("open", this.upOpen);
    this.upstream.addEventListener("message", this.upMessage);
    this.upstream.addEventListener("close", this.upClose);
    this.upstream.addEventListener("error", this.upError);
  }

  /** A message from the client, for the owner. */
  receive(_ws: Client, message: string | Buffer): void {
    if (this.ended) return;
    if (!this.opened) {
      this.pending.push(message);
      this.pendingBytes += message.length;
      if (this.pendingBytes > this.ctx.maxBuffer) this.tooMuch("sent before the room's node answered");
      return;
    }
    this.upstream.send(message);
    if (this.upstream.bufferedAmount > this.ctx.maxBuffer) this.tooMuch("waiting to reach the room's node");
  }

  /** The server calls {@link clientClosed} with the code; nothing is left to do here. */
  leave(): void {}

  /** The client closed: the owner hears the same code and reason. */
  clientClosed(code: number, reason: string): void {
    if (this.ended) return;
    this.end();
    if (sendable(code)) this.upstream.close(code, reason);
    else this.upstream.close(1000);
  }

  /** Closes both legs (server shutdown). */
  close(code: number, reason: string): void {
    if (this.ended) return;
    this.end();
    this.upstream.close(code, reason);
    this.ws.close(code, closeReason(reason));
  }

  private readonly upOpen = (): void => {
    this.opened = true;
    for (const message of this.pending) this.upstream.send(message);
    this.pending = [];
    this.pendingBytes = 0;
  };

  private readonly upMessage = (e: MessageEvent): void => {
    if (this.ended) return;
    const data = e.data as string | ArrayBuffer;
    const sent = this.ws.send(typeof data === "string" ? data : new Uint8Array(data));
    if (sent === -1 && this.ws.getBufferedAmount() > this.ctx.maxBuffer && !this.ws.data.slow) {
      this.ws.data.slow = true;
      this.ctx.counters.slowClientsClosed++;
      this.ctx.counters.closedBy.max_buffer++;
      this.close(1013, `client too slow: more than ${this.ctx.maxBuffer} bytes queued`);
    }
  };

  private readonly upError = (e: Event): void => {
    if (!this.opened)
      this.ctx.log.warn(`forwarding to ${this.upstream.url} failed: ${(e as ErrorEvent).message ?? "error"}`);
  };

  /** The owner closed (or could not be reached): the client hears its code and reason, or why not. */
  private readonly upClose = (e: CloseEvent): void => {
    if (this.ended) return;
    this.end();
    if (!this.opened) {
      this.ctx.cluster.forwardUnreachable++;
      this.ws.close(1013, "room's node unreachable: retry");
    } else if (sendable(e.code)) {
      this.ws.close(e.code, closeReason(e.reason));
    } else {
      this.ws.close(1012, "room's node went away");
    }
  };

  private tooMuch(what: string): void {
    this.ctx.counters.closedBy.max_buffer++;
    this.close(1013, `more than ${this.ctx.maxBuffer} bytes ${what}`);
  }

  private end(): void {
    this.ended = true;
    this.ctx.cluster.forwardedOutOpen--;
    this.onEnd(this);
  }
}
