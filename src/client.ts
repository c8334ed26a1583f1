import type { ServerWebSocket } from "bun";
import type { Connection } from "./env.ts";

/** A websocket client as the server and its room see it. */

/** Per-connection state, carried by Bun on the websocket. */
export interface ClientData {
  conn: Connection;
  room: ClientRoom | null;
  /** Set once the client was closed for falling behind, so the sweep closes it only once. */
  slow: boolean;
}

export type Client = ServerWebSocket<ClientData>;

/** What a client's messages and its leaving go to once it joined: its room (room.ts). */
export interface ClientRoom {
  receive(ws: Client, message: string | Buffer): void;
  leave(ws: Client): void;
}

/** Close reasons are limited to 123 bytes by RFC 6455. */
export function closeReason(text: string): string {
  const bytes = new TextEncoder().encode(text);
  if (bytes.length <= 123) return text;
  return `${new TextDecoder().decode(bytes.subarray(0, 120)).replace(/\uFFFD$/, "")}...`;
}
