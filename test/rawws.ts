import { connect, type Socket } from "node:net";
import { WAIT_MS, within } from "./helpers.ts";

/** One frame as the server sent it (servers never mask), with its first byte kept for the RSV bits. */
export interface RawFrame {
  first: number;
  opcode: number;
  payload: Buffer;
}

/**
 * A websocket client on a plain socket, for what a browser's API hides: the handshake's response headers, the
 * RSV1 bit of a compressed frame, and not answering pings (as curl does) unless told to.
 */
export class RawClient {
  status = 0;
  headers = new Headers();
  /** The body of a refused upgrade. */
  body = "";
  readonly frames: RawFrame[] = [];
  closed = false;
  private buffer = Buffer.alloc(0);
  private handshaken = false;
  private readonly waiters = new Set<() => void>();

  private constructor(
    private readonly socket: Socket,
    private readonly answerPings: boolean,
  ) {
    socket.on("data", (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.parse();
      this.wake();
    });
    socket.on("close", () => {
      this.closed = true;
      this.wake();
    });
    socket.on("error", () => {});
  }

  /**
   * Connects (to a TCP port, or a unix socket path) and sends the upgrade for `path` with `headers`; resolves
   * once the response head arrived.
   */
  static async open(
    target: { port: number } | { path: string },
    roomPath: string,
    opts: { headers?: Record<string, string>; answerPings?: boolean } = {},
  ): Promise<RawClient> {
    const socket = "port" in target ? connect(target.port, "127.0.0.1") : connect(target.path);
    const client = new RawClient(socket, opts.answerPings ?? false);
    const extra = Object.entries(opts.headers ?? {})
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join("");
    socket.write(
      `GET ${roomPath} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`,
    );
    await client.until(() => client.handshaken, "the upgrade's answer");
    return client;
  }

  /** Sends a masked text frame (clients must mask). */
  sendText(text: string): void {
    this.sendFrame(0x1, Buffer.from(text));
  }

  /** Waits, bounded, until `check` holds; rejects early if the socket closed first and `check` still fails. */
  async until(check: () => boolean, what: string, ms = WAIT_MS): Promise<void> {
    let wake = () => {};
    const done = new Promise<void>((resolve, reject) => {
      wake = () => {
        if (check()) resolve();
        else if (this.closed) reject(new Error(`the socket closed while waiting for ${what}`));
      };
      this.waiters.add(wake);
      wake();
    });
    try {
      await within(done, what, ms);
    } finally {
      this.waiters.delete(wake);
    }
  }

  /** Waits for the socket to close, bounded. */
  waitClosed(ms = WAIT_MS): Promise<void> {
    return this.until(() => this.closed, "the socket to close", ms);
  }

  end(): void {
    this.socket.destroy();
  }

  private sendFrame(opcode: number, payload: Buffer): void {
    if (payload.length > 125) throw new Error("RawClient sends short frames only");
    const mask = Buffer.from([1, 2, 3, 4]);
    const masked = Buffer.from(payload.map((b, i) => b ^ (mask[i % 4] as number)));
    this.socket.write(Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | payload.length]), mask, masked]));
  }

  private wake(): void {
    for (const w of this.waiters) w();
  }

  private parse(): void {
    if (!this.handshaken) {
      const end = this.buffer.indexOf("\r\n\r\n");
      if (end === -1) return;
      const [statusLine, ...lines] = this.buffer.subarray(0, end).toString("latin1").split("\r\n");
      this.status = Number(statusLine?.split(" ")[1]);
      for (const line of lines) {
        const colon = line.indexOf(":");
        this.headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
      }
      this.buffer = this.buffer.subarray(end + 4);
      this.handshaken = true;
      if (this.status !== 101) {
        this.body = this.buffer.toString();
        return;
      }
    }
    if (this.status !== 101) {
      this.body += this.buffer.toString();
      this.buffer = Buffer.alloc(0);
      return;
    }
    for (;;) {
      if (this.buffer.length < 2) return;
      const first = this.buffer[0] as number;
      let length = (this.buffer[1] as number) & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (this.buffer.length < 4) return;
        length = this.buffer.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (this.buffer.length < 10) return;
        length = Number(this.buffer.readBigUInt64BE(2));
        offset = 10;
      }
      if (this.buffer.length < offset + length) return;
      const payload = Buffer.from(this.buffer.subarray(offset, offset + length));
      this.buffer = this.buffer.subarray(offset + length);
      const opcode = first & 0x0f;
      this.frames.push({ first, opcode, payload });
      if (opcode === 0x9 && this.answerPings) this.sendFrame(0xa, payload);
    }
  }
}
