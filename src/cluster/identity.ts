import { createHmac, timingSafeEqual } from "node:crypto";

/** The request header a node forwards a client with: who the client is, signed with `--clustersecret`. */
export const FORWARD_HEADER = "x-scalesocket-forward";

/** How long a forwarding header is good for: long enough for one hop, too short to be worth replaying. */
export const FORWARD_TTL_MS = 5000;

/** The client as the entry node admitted it: what the owner's room and child get instead of the hop's own. */
export interface ForwardedClient {
  ip: string;
  port: number;
  /** The query string the child sees (credentials already removed by the entry node). */
  query: string;
  /** The headers the child sees, as name/value pairs (credentials already removed). */
  headers: [string, string][];
  user: string | null;
  room: string;
  /** The subprotocol the entry node answered the client with, `""` when none. */
  protocol: string;
  /** Expiry, in ms since the epoch. */
  exp: number;
}

const b64 = (data: string | Buffer): string => Buffer.from(data).toString("base64url");

function mac(secret: string, payload: string): Buffer {
  return createHmac("sha256", secret).update(payload).digest();
}

/** The header's value: the client as base64url JSON, a dot, and its HMAC-SHA256 under the cluster secret. */
export function signClient(secret: string, client: Omit<ForwardedClient, "exp">, now = Date.now()): string {
  const payload = b64(JSON.stringify({ ...client, exp: now + FORWARD_TTL_MS } satisfies ForwardedClient));
  return `${payload}.${b64(mac(secret, payload))}`;
}

/**
 * The client a forwarding header vouches for, or why it is refused: a bad signature (compared in constant
 * time), an expired header, or one made for another room.
 */
export function verifyClient(
  secret: string,
  value: string,
  room: string,
  now = Date.now(),
): ForwardedClient | string {
  const dot = value.indexOf(".");
  if (dot === -1) return "malformed forwarding header";
  const payload = value.slice(0, dot);
  const given = Buffer.from(value.slice(dot + 1), "base64url");
  const expected = mac(secret, payload);
  if (given.length !== expected.length || !timingSafeEqual(given, expected))
    return "bad forwarding signature";
  let client: ForwardedClient;
  try {
    client = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as ForwardedClient;
  } catch {
    return "malformed forwarding header";
  }
  if (typeof client.exp !== "number" || client.exp < now) return "expired forwarding header";
  if (client.room !== room) return "forwarding header for another room";
  return client;
}
