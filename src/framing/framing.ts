import type { Config } from "../config.ts";
import { type Connection, expandTemplate } from "../env.ts";
import type { ByteSplitter } from "./bytesplit.ts";

/**
 * Framing: how messages look on each side of a room. Every mode (plain lines, binary, JSON, gwsocket) is one
 * object of the same shape: what a client's message becomes for the child, what the child hears when clients come
 * and go, and the reader that cuts the child's output into messages and routes them. `--clientframe` and
 * `--serverframe` may differ, so a room takes the client half of one mode and the server half of another.
 */

/** Where a framing's reader delivers the child's messages: the room. */
export interface RoomOutput {
  /** To every member; `tagged` marks a message eligible for `--cache=tagged`. */
  broadcast(message: string | Uint8Array, tagged: boolean): void;
  /** To one member only; dropped when the ID is not a member of this room. Never cached. */
  sendTo(id: number, message: string | Uint8Array): void;
  /** Not delivered: the room's new metadata (`_meta`). */
  setMetadata(meta: Record<string, unknown>): void;
  /** A message could not be delivered (too long, a frame that makes no sense): counted and logged. */
  dropped(warning: string): void;
  /** Whether a client ID is a member of the room. */
  has(id: number): boolean;
}

/** The client → child half of a mode. */
export interface ClientFraming {
  /**
   * The most bytes the framing adds to a client's message (a newline, a header, a `_from` stamp). The websocket
   * accepts at most `--maxbuffer` minus this, so every message it accepts fits the child's input.
   */
  readonly overhead: number;
  /** Why `toChild` refuses a message, for the log: what it is not. */
  readonly refusal: string;
  /** A client's message as the child reads it; null when the framing refuses it (see `refusal`). */
  toChild(message: string | Buffer, from: number): string | Uint8Array | null;
  /** What the child reads when a client joins; null for nothing. */
  joined(conn: Connection): string | Uint8Array | null;
  /** What the child reads when a client leaves; null for nothing. */
  left(conn: Connection): string | Uint8Array | null;
}

/** The child → clients half of a mode. */
export interface ServerFraming {
  /**
   * Whether the child addresses clients by ID (`_to`, gwsocket headers): each member then also subscribes to a
   * topic of its own, so a message for one client is published too.
   */
  readonly addressed: boolean;
  /** `--passstderr`: a line of the child's stderr as its clients get it. */
  stderr(line: string): string;
  /** A reader of one child's output that delivers each message to `room`, in order. */
  reader(room: RoomOutput): ByteSplitter;
}

export type Framing = ClientFraming & ServerFraming;

/** `--joinmsg`/`--leavemsg` for the modes that take them, with `end` after each (a newline in text modes). */
export function templateNotices(config: Config, end: string): Pick<ClientFraming, "joined" | "left"> {
  const { joinMsg, leaveMsg } = config;
  return {
    joined: (conn) => (joinMsg === null ? null : expandTemplate(joinMsg, conn) + end),
    left: (conn) => (leaveMsg === null ? null : expandTemplate(leaveMsg, conn) + end),
  };
}

/** The warning for a child message longer than the limit. */
export function oversizeWarning(size: number, limit: number): string {
  return `dropped a child message of more than ${size} bytes (limit ${limit})`;
}
