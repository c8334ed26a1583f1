import { BlockList, isIP } from "node:net";

/** A client's address as the server reports it: the peer's, or the one a trusted proxy forwarded. */
export interface ClientAddress {
  ip: string;
  /** 0 when a proxy forwarded the address without its port (X-Forwarded-For never carries one). */
  port: number;
}

/** An IPv4 address seen through an IPv6 socket (`::ffff:10.0.0.1`) is the IPv4 address. */
function plainIp(ip: string): string {
  return ip.startsWith("::ffff:") && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip;
}

/**
 * `--trustproxy` entries: an IP (`127.0.0.1`, `::1`) or a CIDR (`10.0.0.0/8`, `fd00::/8`). Returns the reason an
 * entry is not one, or null when it is.
 */
export function proxyEntryError(entry: string): string | null {
  const [ip = "", prefix, extra] = entry.split("/");
  const family = isIP(ip);
  if (family === 0 || extra !== undefined) return "expected an IP address or a CIDR like 10.0.0.0/8";
  if (prefix === undefined) return null;
  const max = family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > max) return `the prefix length must be 0 to ${max}`;
  return null;
}

/** Whether an address is one of the trusted proxies. Entries are checked by {@link proxyEntryError} first. */
export function trustedProxies(entries: readonly string[]): (ip: string) => boolean {
  const list = new BlockList();
  for (const entry of entries) {
    const [ip = "", prefix] = entry.split("/");
    const type = isIP(ip) === 6 ? "ipv6" : "ipv4";
    if (prefix === undefined) list.addAddress(ip, type);
    else list.addSubnet(ip, Number(prefix), type);
  }
  return (ip) => {
    const plain = plainIp(ip);
    const family = isIP(plain);
    return family !== 0 && list.check(plain, family === 6 ? "ipv6" : "ipv4");
  };
}

/**
 * The hops a request went through, nearest last, from `Forwarded` (RFC 7239, its `for=` parameters) or else
 * `X-Forwarded-For`. An entry that is not an address (`unknown`, an obfuscated `_name`) is kept as null.
 */
export function forwardedChain(headers: Headers): (ClientAddress | null)[] {
  const forwarded = headers.get("forwarded");
  if (forwarded !== null) {
    const out: (ClientAddress | null)[] = [];
    for (const element of forwarded.split(",")) {
      const m = /(?:^|;)\s*for\s*=\s*("[^"]*"|[^;,\s]*)/i.exec(element);
      if (m) out.push(parseNode((m[1] as string).replace(/^"|"$/g, "")));
    }
    if (out.length > 0) return out;
  }
  const xff = headers.get("x-forwarded-for");
  if (xff === null) return [];
  return xff.split(",").map((s) => parseNode(s.trim()));
}

/** `1.2.3.4`, `1.2.3.4:5678`, `[2001:db8::1]:4711`, `2001:db8::1`: an address and its port, if any. */
function parseNode(node: string): ClientAddress | null {
  const bracketed = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(node);
  if (bracketed) {
    const ip = bracketed[1] as string;
    return isIP(ip) === 6 ? { ip, port: Number(bracketed[2] ?? 0) } : null;
  }
  if (isIP(node) !== 0) return { ip: plainIp(node), port: 0 };
  const v4 = /^([\d.]+):(\d{1,5})$/.exec(node);
  if (v4 && isIP(v4[1] as string) === 4) return { ip: v4[1] as string, port: Number(v4[2]) };
  return null;
}

/**
 * The client's address. When the peer is a trusted proxy, it is the rightmost forwarded address that is not
 * itself trusted: everything left of it was written by hops nobody vouches for, so a client cannot choose its
 * own address by sending the header. An entry that is not an address stops the walk at the last trusted hop.
 */
export function clientAddress(
  peer: ClientAddress,
  headers: Headers,
  trusted: ((ip: string) => boolean) | null,
): ClientAddress {
  if (trusted === null || !trusted(peer.ip)) return peer;
  let client = peer;
  const chain = forwardedChain(headers);
  for (let i = chain.length - 1; i >= 0; i--) {
    const hop = chain[i];
    if (hop === null || hop === undefined) break;
    client = hop;
    if (!trusted(hop.ip)) break;
  }
  return client;
}
