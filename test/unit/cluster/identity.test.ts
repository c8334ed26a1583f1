import { describe, expect, test } from "bun:test";
import { FORWARD_TTL_MS, signClient, verifyClient } from "../../../src/cluster/identity.ts";
import { redactUrl } from "../../../src/cluster/store.ts";

const SECRET = "0123456789abcdef0123456789abcdef";
const CLIENT = {
  ip: "203.0.113.7",
  port: 51000,
  query: "a=1",
  headers: [["user-agent", "test"]] as [string, string][],
  user: "ada",
  room: "lobby",
  protocol: "chat",
};

describe("the forwarding header", () => {
  test("round trip: the owner reads the client the entry node signed", () => {
    expect(verifyClient(SECRET, signClient(SECRET, CLIENT, 1000), "lobby", 1000)).toEqual({
      ...CLIENT,
      exp: 1000 + FORWARD_TTL_MS,
    });
  });

  const good = signClient(SECRET, CLIENT, 1000);
  const [payload, mac] = good.split(".") as [string, string];
  const tampered = Buffer.from(JSON.stringify({ ...CLIENT, user: "root", exp: 9e12 })).toString("base64url");
  const cases: [string, string, string, number, string][] = [
    ["another secret", signClient(`${SECRET}x`, CLIENT, 1000), "lobby", 1000, "bad forwarding signature"],
    ["a payload changed", `${tampered}.${mac}`, "lobby", 1000, "bad forwarding signature"],
    ["a truncated signature", `${payload}.${mac.slice(0, 10)}`, "lobby", 1000, "bad forwarding signature"],
    ["no signature", payload, "lobby", 1000, "malformed forwarding header"],
    ["expired", good, "lobby", 1001 + FORWARD_TTL_MS, "expired forwarding header"],
    ["another room", good, "kitchen", 1000, "forwarding header for another room"],
  ];
  test.each(cases)("refused: %s", (_what, value, room, now, reason) => {
    expect(verifyClient(SECRET, value, room, now)).toBe(reason);
  });
});

describe("redactUrl", () => {
  test.each([
    ["redis://:pw@host:6379/2", "redis://:***@host:6379/2"],
    ["rediss://user:pw@host", "rediss://user:***@host"],
    ["redis://host", "redis://host"],
  ])("%s", (url, shown) => expect(redactUrl(url)).toBe(shown));
});
