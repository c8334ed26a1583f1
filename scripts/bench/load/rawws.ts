/**
 * A minimal websocket client over `Bun.connect`, for the scenarios with thousands of clients per load generator.
 *
 * Bun's `WebSocket` cannot pick its source address, and one source address gives a destination at most the
 * ephemeral port range (32768–60999 by default): the crowd spreads its clients over 127.0.0.2 … 127.0.0.9. It is
 * also lighter than `WebSocket` objects, so the load generator spends less of the shared CPU than the server.
 * Only what the benchmarks need: text frames of any length from the server, masked text frames to it, close.
 */
import type { Socket } from "bun";

export interface RawHandlers {
  /** One whole text (or binary) message, as the bytes of its payload (a view valid only during the call). */
  message(payload: Uint8Array): void;
  /** The connection ended; `code` is the close frame's, 1006 when there was none. */
  close(code: number): void;
}

export interface RawClient {
  send(text: string): void;
  close(): void;
}

interface State {
  handlers: RawHandlers;
  /** Bytes received and not yet parsed (the handshake, or a frame split over reads). */
  pending: Uint8Array | null;
  open: boolean;
  closeCode: number;
  resolveOpen: (() => void) | null;
  rejectOpen: ((err: Error) => void) | null;
  /** Bytes the socket did not take yet, written on `drain`, so that a full send buffer never loses a frame. */
  unsent: Uint8Array | null;
}

const encoder = new TextEncoder();
const HEADER_END = encoder.encode("\r\n\r\n");

function indexOfSeq(buf: Uint8Array, seq: Uint8Array): number {
  outer: for (let i = 0; i + seq.length <= buf.length; i++) {
    for (let j = 0; j < seq.length; j++) if (buf[i + j] !== seq[j]) continue outer;
    return i;
  }
  return -1;
}

function concat(a: Uint8Array | null, b: Uint8Array): Uint8Array {
  if (a === null || a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Parses every whole frame of `buf`; returns the unparsed rest (copied: `buf` is Bun's, reused after the call). */
function frames(s: State, buf: Uint8Array): Uint8Array | null {
  let at = 0;
  while (buf.length - at >= 2) {
    const b0 = buf[at] as number;
    let len = (buf[at + 1] as number) & 0x7f;
    let head = 2;
    if (len === 126) {
      if (buf.length - at < 4) break;
      len = ((buf[at + 2] as number) << 8) | (buf[at + 3] as number);
      head = 4;
    } else if (len === 127) {
      if (buf.length - at < 10) break;
      len = Number(new DataView(buf.buffer, buf.byteOffset + at + 2, 8).getBigUint64(0));
      head = 10;
    }
    if (buf.length - at < head + len) break;
    const payload = buf.subarray(at + head, at + head + len);
    const opcode = b0 & 0x0f;
    // Fragmented messages are never sent by the servers under test for these sizes: a continuation is an error.
    if (opcode === 1 || opcode === 2) s.handlers.message(payload);
    else if (opcode === 8)
      s.closeCode = len >= 2 ? ((payload[0] as number) << 8) | (payload[1] as number) : 1005;
    else if (opcode === 0) throw new Error("fragmented message (not expected from the servers under test)");
    at += head + len;
  }
  return at === buf.length ? null : buf.slice(at);
}

/**
 * A masked client frame. The mask is zero (allowed by RFC 6455: the key must be present, the payload XOR 0 is
 * itself), which keeps the load generator's CPU on the wire rather than on masking.
 */
function frame(text: string): Uint8Array {
  const body = encoder.encode(text);
  const n = body.length;
  const head = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const out = new Uint8Array(head + 4 + n);
  out[0] = 0x81;
  if (n < 126) out[1] = 0x80 | n;
  else if (n < 65536) {
    out[1] = 0x80 | 126;
    out[2] = n >> 8;
    out[3] = n & 0xff;
  } else {
    out[1] = 0x80 | 127;
    new DataView(out.buffer).setBigUint64(2, BigInt(n));
  }
  out.set(body, head + 4);
  return out;
}

const CLOSE_FRAME = new Uint8Array([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]);

/**
 * Opens a websocket to `ws://host:port/path` from `localAddress`; resolves once the server answered 101.
 * Rejects on refusal, a non-101 answer, or after `timeoutMs`.
 */
export async function connectRaw(
  host: string,
  port: number,
  path: string,
  localAddress: string,
  handlers: RawHandlers,
  timeoutMs: number,
): Promise<RawClient> {
  const state: State = {
    handlers,
    pending: null,
    open: false,
    closeCode: 1006,
    resolveOpen: null,
    rejectOpen: null,
    unsent: null,
  };
  const opened = new Promise<void>((resolve, reject) => {
    state.resolveOpen = resolve;
    state.rejectOpen = reject;
  });
  const key = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("base64");
  const request =
    `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`;
  const fail = (err: Error) => {
    const reject = state.rejectOpen;
    state.resolveOpen = state.rejectOpen = null;
    reject?.(err);
  };
  const write = (sock: Socket<State>, bytes: Uint8Array) => {
    if (state.unsent !== null) {
      state.unsent = concat(state.unsent, bytes);
      return;
    }
    const n = sock.write(bytes);
    if (n < bytes.length) state.unsent = bytes.slice(Math.max(0, n));
  };
  // `localAddress` is accepted by Bun.connect (it binds before connecting) though its type does not list it.
  const options = {
    hostname: host,
    port,
    localAddress,
    socket: {
      open(sock: Socket<State>) {
        sock.write(request);
      },
      data(sock: Socket<State>, chunk: Uint8Array) {
        let buf = state.pending === null ? chunk : concat(state.pending, chunk);
        state.pending = null;
        if (!state.open) {
          const end = indexOfSeq(buf, HEADER_END);
          if (end === -1) {
            state.pending = buf.slice();
            return;
          }
          const status = new TextDecoder().decode(buf.subarray(0, Math.min(end, 64)));
          if (!status.startsWith("HTTP/1.1 101")) {
            fail(new Error(`${path} from ${localAddress}: ${status.split("\r\n")[0]}`));
            sock.end();
            return;
          }
          state.open = true;
          const resolve = state.resolveOpen;
          state.resolveOpen = state.rejectOpen = null;
          resolve?.();
          buf = buf.subarray(end + 4);
        }
        state.pending = frames(state, buf);
      },
      close() {
        fail(new Error(`${path} from ${localAddress}: closed before the handshake`));
        if (state.open) handlers.close(state.closeCode);
        state.open = false;
      },
      error(_sock: Socket<State>, err: Error) {
        fail(new Error(`${path} from ${localAddress}: ${err.message}`));
      },
      drain(sock: Socket<State>) {
        const rest = state.unsent;
        state.unsent = null;
        if (rest !== null) write(sock, rest);
      },
      connectError(_sock: Socket<State>, err: Error) {
        fail(new Error(`${path} from ${localAddress}: ${err.message}`));
      },
    },
  };
  let timer: Timer | undefined;
  const sock = await Bun.connect(options as unknown as Parameters<typeof Bun.connect<State>>[0]);
  try {
    await Promise.race([
      opened,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`${path} from ${localAddress}: no 101 in ${timeoutMs} ms`)),
          timeoutMs,
        );
      }),
    ]);
  } catch (err) {
    sock.end();
    throw err;
  } finally {
    clearTimeout(timer);
  }
  return {
    send(text) {
      write(sock, frame(text));
    },
    close() {
      if (!state.open) return;
      write(sock, CLOSE_FRAME);
      if (state.unsent === null) sock.end();
    },
  };
}
