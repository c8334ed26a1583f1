import { describe, expect, test } from "bun:test";
import { clientAddress, forwardedChain, proxyEntryError, trustedProxies } from "../../../src/access/proxy.ts";

const PEER = { ip: "127.0.0.1", port: 5000 };

describe("proxyEntryError", () => {
  test.each([
    ["127.0.0.1", null],
    ["::1", null],
    ["10.0.0.0/8", null],
    ["fd00::/8", null],
    ["0.0.0.0/0", null],
    ["10.0.0.0/33", "the prefix length must be 0 to 32"],
    ["fd00::/129", "the prefix length must be 0 to 128"],
    ["10.0.0.0/x", "the prefix length must be 0 to 32"],
    ["localhost", "expected an IP address or a CIDR like 10.0.0.0/8"],
    ["10.0.0.0/8/8", "expected an IP address or a CIDR like 10.0.0.0/8"],
    ["", "expected an IP address or a CIDR like 10.0.0.0/8"],
  ])("%p", (entry, why) => {
    expect(proxyEntryError(entry)).toBe(why);
  });
});

describe("trustedProxies", () => {
  const trusted = trustedProxies(["127.0.0.1", "10.0.0.0/8", "fd00::/8"]);
  test.each([
    ["127.0.0.1", true],
    ["::ffff:127.0.0.1", true],
    ["10.200.3.4", true],
    ["fd12::1", true],
    ["127.0.0.2", false],
    ["11.0.0.1", false],
    ["fe80::1", false],
    ["not-an-ip", false],
  ])("%p → %p", (ip, expected) => {
    expect(trusted(ip)).toBe(expected);
  });
});

describe("forwardedChain", () => {
  test("Forwarded wins over X-Forwarded-For, quoted IPv6 with a port, unknown kept as null", () => {
    const h = new Headers({
      forwarded: 'for=192.0.2.60;proto=http;by=203.0.113.43, for="[2001:db8:cafe::17]:4711", for=unknown',
      "x-forwarded-for": "6.6.6.6",
    });
    expect(forwardedChain(h)).toEqual([
      { ip: "192.0.2.60", port: 0 },
      { ip: "2001:db8:cafe::17", port: 4711 },
      null,
    ]);
  });

  test("X-Forwarded-For, with repeated headers joined", () => {
    const h = new Headers();
    h.append("x-forwarded-for", "203.0.113.1, 198.51.100.2:8080");
    h.append("x-forwarded-for", "10.0.0.1");
    expect(forwardedChain(h)).toEqual([
      { ip: "203.0.113.1", port: 0 },
      { ip: "198.51.100.2", port: 8080 },
      { ip: "10.0.0.1", port: 0 },
    ]);
  });
});

describe("clientAddress", () => {
  const trusted = trustedProxies(["127.0.0.1", "10.0.0.0/8"]);
  const xff = (value: string) => new Headers({ "x-forwarded-for": value });

  test("no --trustproxy: the header is ignored", () => {
    expect(clientAddress(PEER, xff("6.6.6.6"), null)).toEqual(PEER);
  });

  test("an untrusted peer: its header is ignored", () => {
    const peer = { ip: "203.0.113.9", port: 1 };
    expect(clientAddress(peer, xff("6.6.6.6"), trusted)).toEqual(peer);
  });

  test("a trusted peer: the rightmost untrusted address, never what the client wrote before it", () => {
    expect(clientAddress(PEER, xff("6.6.6.6, 203.0.113.9, 10.1.1.1"), trusted)).toEqual({
      ip: "203.0.113.9",
      port: 0,
    });
  });

  test("every hop trusted: the leftmost", () => {
    expect(clientAddress(PEER, xff("10.0.0.2, 10.0.0.3"), trusted)).toEqual({ ip: "10.0.0.2", port: 0 });
  });

  test("a hop that is not an address stops the walk at the last trusted one", () => {
    expect(clientAddress(PEER, xff("6.6.6.6, garbage, 10.0.0.3"), trusted)).toEqual({
      ip: "10.0.0.3",
      port: 0,
    });
  });

  test("a trusted peer without the header is the client", () => {
    expect(clientAddress(PEER, new Headers(), trusted)).toEqual(PEER);
  });
});
